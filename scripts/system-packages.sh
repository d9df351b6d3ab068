# Sourced by scripts/demo and scripts/test: Debian packages the build (and the tests) need,
# installed only when missing and when we may (root + apt-get).
# Usage: . scripts/system-packages.sh; need_packages build   (or: need_packages build test)

need_packages() {
  local need=()
  # The build: SQLite for the queue, libmosquitto for the mqtt sink, libjpeg-turbo for picture health.
  dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
  dpkg -s libmosquitto-dev >/dev/null 2>&1 || need+=(libmosquitto-dev)
  dpkg -s libjpeg62-turbo-dev >/dev/null 2>&1 || need+=(libjpeg62-turbo-dev)   # picture health's JPEG decoder
  if [ "${2:-}" = test ]; then
    command -v openssl >/dev/null || need+=(openssl)              # certificates for the mutual-TLS sink test
    command -v systemd-analyze >/dev/null || need+=(systemd)      # scripts/verify-systemd.sh
    command -v adduser >/dev/null || need+=(adduser)              # the package's postinst (scripts/test-package.sh)
    python3 -c "import jsonschema" >/dev/null 2>&1 || need+=(python3-jsonschema)  # event schema validation
    [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)               # the broker the mqtt sink tests start
    command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)  # their consumer
    [ -x /usr/sbin/nats-server ] || need+=(nats-server)           # the three-node cluster of the district test
    command -v sipp >/dev/null || need+=(sip-tester)             # SIPp, the gb28181 interoperability test
    dpkg -s gstreamer1.0-plugins-good >/dev/null 2>&1 && /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" >/dev/null 2>&1 \
      || need+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base gstreamer1.0-plugins-good)  # the real RTSP server of the liveness test
    command -v strace >/dev/null || need+=(strace)               # scripts/strace-durability.py
    # The web console's browser test: headless Chromium driven by Debian's selenium, a CJK font for the Chinese pages.
    command -v chromium >/dev/null || need+=(chromium)
    command -v chromedriver >/dev/null || need+=(chromium-driver)
    /usr/bin/python3 -c "import selenium" >/dev/null 2>&1 || need+=(python3-selenium)
    dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing ${need[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
      return 1
    fi
  fi
}
