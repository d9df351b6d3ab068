import Foundation

/// The console's words in English and Chinese; the browser's Accept-Language picks one.
/// Every key is in both tables (a test checks), so a page never shows a key name.
public enum Language: String, Sendable, CaseIterable {
    case en
    case zh

    /// The first supported language by the browser's preference (q values); English otherwise.
    public static func preferred(acceptLanguage header: String?) -> Language {
        guard let header else { return .en }
        let ranked = header.split(separator: ",").enumerated().compactMap { index, part -> (tag: String, q: Double, index: Int)? in
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = pieces.first?.lowercased(), !tag.isEmpty else { return nil }
            let q = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return (tag, q, index)
        }
        .sorted { $0.q != $1.q ? $0.q > $1.q : $0.index < $1.index }
        for entry in ranked where entry.q > 0 {
            if entry.tag.hasPrefix("zh") { return .zh }
            if entry.tag.hasPrefix("en") { return .en }
        }
        return .en
    }

    public var words: [String: String] {
        switch self {
        case .en: Words.english
        case .zh: Words.chinese
        }
    }
}

enum Words {
    static let english: [String: String] = [
        "overview": "Overview", "devices": "Devices", "events": "Events", "quarantine": "Quarantine",
        "login": "Log in", "logout": "Log out", "signedInAs": "Signed in as", "user": "User", "password": "Password",
        "site": "Site", "version": "Version", "uptime": "Uptime", "queue": "Queue", "depth": "Events waiting",
        "oldest": "Oldest waiting", "disk": "Disk used of budget", "evicted": "Evicted", "quarantined": "Quarantined (waiting)",
        "duplicates": "Duplicates", "devicesUp": "Devices up", "sinks": "Sinks", "name": "Name", "type": "Type", "state": "State",
        "rate": "Events/min", "lag": "Lag", "lastError": "Last error", "driver": "Driver", "since": "Since", "reason": "Reason",
        "lastSeen": "Last event", "eventCount": "Events", "detail": "Detail", "device": "Device", "kind": "Kind",
        "occurredAt": "Occurred", "receivedAt": "Received", "subject": "Subject", "result": "Result", "point": "Point",
        "from": "From", "until": "Until", "search": "Search", "liveFeed": "Live feed (newest first)", "any": "any",
        "id": "Id", "route": "Route", "remote": "From address", "replayed": "Replayed", "waiting": "waiting", "replay": "Replay",
        "replayAll": "Replay all waiting", "payload": "Payload (decoded)", "payloadHidden": "The payload may hold personal data in clear: log in to see it.",
        "reload": "Reload config", "actions": "Actions", "loginNeeded": "Log in to replay or reload.", "recentEvents": "Recent events in the queue",
        "quarantineOfDevice": "Quarantined payloads", "never": "never", "none": "none", "failedSinks": "Sinks not running",
        "loginFailed": "Unknown user or wrong password.", "loggedOut": "Logged out.", "notFound": "Not found",
        "timesHint": "Times as RFC 3339, e.g. 2026-12-01T08:00:00Z", "noEvents": "No events match.",
        "consoleDisabledLogin": "No console users are configured (admin.console.users): the console is read-only.",
        "bytes": "Bytes", "sealedUnder": "Sealed under key",
        "profiles": "Profiles", "vendor": "Vendor", "samples": "Samples", "summary": "Summary", "profileErrors": "Profiles that do not load",
        "file": "File:line", "key": "Key", "adaptersDirectory": "Profiles folder", "profileTester": "Test a payload against a profile",
        "profile": "Profile", "contentType": "Content type", "timeZone": "Device time zone", "serial": "Device serial",
        "pastePayload": "Paste the payload the device sent", "runTest": "Test", "testResult": "Events and reply",
        "testQuarantined": "Does not map: it would be quarantined (reason and reply)", "testWithProfile": "Test with a profile",
        "devicesDown": "Devices down", "newProfileName": "New profile named", "scaffold": "Scaffold a draft from this device's captured payloads",
        "scaffolded": "Draft profile written", "redacted": "personal values replaced by stand-ins", "noCaptured": "no waiting captured payloads",
        "profileNameRule": "use letters, digits, '-' and '_' (e.g. acme-lpr)", "loginLocked": "Too many wrong passwords for this user; try again later",
        "discard": "Discard", "discarded": "Discarded", "discardReason": "Why discard it (recorded and logged as written: no plates, cards or names)",
        "payloadErased": "The payload was erased when the entry was discarded; its SHA-256 is kept.", "sha256": "Payload SHA-256",
        "clockOffset": "Clock offset (gateway − device)",
        "saveProfile": "Check and save profile.yaml", "saved": "Saved", "notSaved": "Not saved: the profile loader found problems",
        "activateFor": "Activate this profile for a device (writes options.profile into the config file, keeps a .bak, reloads)",
        "activate": "Activate and reload", "activated": "Activated", "editProfile": "Edit",
        "lastPayload": "Last raw payload", "noPayload": "nothing received since the daemon started",
        "payloadLoginNeeded": "Log in to see the payload itself: it may hold personal values the mapping did not read.",
        "payloadSize": "Size", "payloadShown": "Shown",
        "payloadPolicy": "Held in memory only, never on disk. Plates, cards, faces and names the mapping read appear as the privacy policy stores them; pictures and binary parts only as their size.",
        "payloadUnmapped": "It did not map (or its driver names no values): every word that looks like a value is hidden.",
    ]

    static let chinese: [String: String] = [
        "overview": "概览", "devices": "设备", "events": "事件", "quarantine": "隔离区",
        "login": "登录", "logout": "退出", "signedInAs": "当前用户", "user": "用户名", "password": "密码",
        "site": "站点", "version": "版本", "uptime": "运行时间", "queue": "队列", "depth": "待转发事件",
        "oldest": "最早待转发", "disk": "磁盘占用 / 预算", "evicted": "已淘汰", "quarantined": "已隔离（待处理）",
        "duplicates": "重复", "devicesUp": "在线设备", "sinks": "转发目标", "name": "名称", "type": "类型", "state": "状态",
        "rate": "事件/分钟", "lag": "积压", "lastError": "最近错误", "driver": "驱动", "since": "起始时间", "reason": "原因",
        "lastSeen": "最近事件", "eventCount": "事件数", "detail": "详情", "device": "设备", "kind": "类型",
        "occurredAt": "发生时间", "receivedAt": "接收时间", "subject": "对象", "result": "结果", "point": "通道",
        "from": "开始", "until": "结束", "search": "查询", "liveFeed": "实时事件（最新在前）", "any": "全部",
        "id": "编号", "route": "路径", "remote": "来源地址", "replayed": "已重放", "waiting": "待处理", "replay": "重放",
        "replayAll": "重放全部待处理", "payload": "原始数据（已解密）", "payloadHidden": "原始数据可能含有明文个人信息：登录后可查看。",
        "reload": "重新加载配置", "actions": "操作", "loginNeeded": "登录后才能重放或重新加载。", "recentEvents": "队列中的最近事件",
        "quarantineOfDevice": "隔离的数据", "never": "从未", "none": "无", "failedSinks": "未运行的转发目标",
        "loginFailed": "用户名或密码错误。", "loggedOut": "已退出。", "notFound": "未找到",
        "timesHint": "时间格式为 RFC 3339，例如 2026-12-01T08:00:00Z", "noEvents": "没有符合条件的事件。",
        "consoleDisabledLogin": "未配置控制台用户（admin.console.users）：控制台为只读。",
        "bytes": "字节", "sealedUnder": "加密密钥",
        "profiles": "厂商配置", "vendor": "厂商", "samples": "样例", "summary": "说明", "profileErrors": "无法加载的配置",
        "file": "文件:行", "key": "字段", "adaptersDirectory": "配置目录", "profileTester": "用配置测试一段数据",
        "profile": "配置", "contentType": "内容类型", "timeZone": "设备时区", "serial": "设备序列号",
        "pastePayload": "粘贴设备发送的数据", "runTest": "测试", "testResult": "事件与回复",
        "testQuarantined": "无法映射：将被隔离（原因与回复）", "testWithProfile": "用配置测试",
        "devicesDown": "离线设备", "newProfileName": "新配置名称", "scaffold": "用该设备捕获的数据生成配置草稿",
        "scaffolded": "配置草稿已写入", "redacted": "个人信息已替换为占位值", "noCaptured": "没有待处理的捕获数据",
        "profileNameRule": "只用字母、数字、'-' 和 '_'（例如 acme-lpr）", "loginLocked": "该用户密码错误次数过多，请稍后再试",
        "discard": "丢弃", "discarded": "已丢弃", "discardReason": "丢弃原因（按原文记录并写入日志：请勿填写车牌、卡号或姓名）",
        "payloadErased": "丢弃时原始数据已删除，仅保留其 SHA-256。", "sha256": "原始数据 SHA-256",
        "clockOffset": "时钟偏差（网关 − 设备）",
        "saveProfile": "检查并保存 profile.yaml", "saved": "已保存", "notSaved": "未保存：配置加载器发现问题",
        "activateFor": "为设备启用此配置（写入配置文件的 options.profile，保留 .bak 备份并重新加载）",
        "activate": "启用并重新加载", "activated": "已启用", "editProfile": "编辑",
        "lastPayload": "最近一次原始数据", "noPayload": "守护进程启动以来未收到数据",
        "payloadLoginNeeded": "登录后才能查看数据内容：其中可能含有映射未读出的个人信息。",
        "payloadSize": "大小", "payloadShown": "显示",
        "payloadPolicy": "仅保存在内存中，从不写入磁盘。映射读出的车牌、卡号、人脸和姓名按隐私策略的存储方式显示；图片和二进制部分只显示大小。",
        "payloadUnmapped": "该数据未能映射（或其驱动未给出具体值）：所有像数值的词均已隐藏。",
    ]
}
