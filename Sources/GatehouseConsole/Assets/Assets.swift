/// The console's only style sheet and script, compiled into the binary: no CDN, no file to
/// install, works on a site without internet.
enum Assets {
    static let css = """
        body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;color:#1d2430;background:#f4f6f8}
        header{background:#1d2430;color:#fff;padding:.6em 1em}
        header a{color:#cfe3ff;margin-right:1em;text-decoration:none}
        header .site{margin-right:2em;font-weight:bold}
        header .user{float:right}
        main{padding:1em 1.5em}
        .cards{display:flex;flex-wrap:wrap;gap:1em}
        .card{background:#fff;border-radius:6px;padding:.6em 1em;min-width:15em;box-shadow:0 1px 2px #0002}
        .card h2{font-size:1em;margin:.2em 0 .5em}
        dl{display:grid;grid-template-columns:auto auto;gap:.2em 1em;margin:0}
        dt{color:#5a6472}dd{margin:0;font-variant-numeric:tabular-nums}
        table{border-collapse:collapse;background:#fff;margin:.5em 0 1.5em;box-shadow:0 1px 2px #0002}
        th,td{text-align:left;padding:.3em .7em;border-bottom:1px solid #e3e7ec;vertical-align:top}
        th{background:#eef1f4}
        .state-up{color:#18794e;font-weight:bold}.state-down{color:#c0261c;font-weight:bold}.state-waiting{color:#8a6100}
        .flash{background:#fff6d6;border:1px solid #e6c200;padding:.5em 1em;margin:1em 1.5em}
        .error{background:#ffe4e1;border-color:#c0261c}
        pre{background:#fff;padding:.7em;overflow:auto;max-width:100%;box-shadow:0 1px 2px #0002}
        #last-payload{white-space:pre-wrap;word-break:break-all;max-height:40em}
        #profile-text{width:100%;box-sizing:border-box;font-family:monospace}
        form.inline{display:inline}
        form label{margin-right:1em}
        button{cursor:pointer}
        """

    /// Live pages carry `data-live="<json url>"`: every few seconds the script fetches it and
    /// writes `fields` into `[data-field]` and `tables` into `tbody[data-table]`, as text only
    /// (no innerHTML), so nothing a device sent can run in the page.
    /// It sends back the reply's ETag, so an unchanged page costs a 304 without a body.
    static let javascript = """
        (function(){
          var root=document.querySelector('[data-live]');
          if(!root)return;
          var url=root.getAttribute('data-live');
          var every=parseInt(root.getAttribute('data-interval')||'2000',10);
          function cell(c){
            var td=document.createElement('td');
            if(c.cls)td.className=c.cls;
            if(c.href){var a=document.createElement('a');a.href=c.href;a.textContent=c.text;td.appendChild(a);}else{td.textContent=c.text;}
            return td;
          }
          function apply(data){
            Object.keys(data.fields||{}).forEach(function(k){
              document.querySelectorAll('[data-field="'+k+'"]').forEach(function(el){el.textContent=data.fields[k];});
            });
            Object.keys(data.tables||{}).forEach(function(k){
              var body=document.querySelector('tbody[data-table="'+k+'"]');
              if(!body)return;
              var rows=data.tables[k].map(function(r){var tr=document.createElement('tr');r.cells.forEach(function(c){tr.appendChild(cell(c));});return tr;});
              body.replaceChildren.apply(body,rows);
            });
            root.setAttribute('data-updated',String(Date.now()));
          }
          var etag=null;
          function poll(){
            var headers=etag?{'If-None-Match':etag}:{};
            fetch(url,{credentials:'same-origin',cache:'no-store',headers:headers}).then(function(r){
                if(r.status===304){root.setAttribute('data-updated',String(Date.now()));return null;}
                if(!r.ok)return null;
                etag=r.headers.get('ETag');
                return r.json();
              })
              .then(function(d){if(d)apply(d);}).catch(function(){}).then(function(){setTimeout(poll,every);});
          }
          setTimeout(poll,every);
        })();
        """
}
