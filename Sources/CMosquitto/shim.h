// libmosquitto (Debian's libmosquitto-dev): the Eclipse Mosquitto project's MQTT 3.1.1/5 client.
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

// The texts the `mqtt` sink and the `mqtt` driver (two Swift modules that share only this one)
// give an operator.

// libmosquitto's text for a return code; MOSQ_ERR_ERRNO's reason is in errno, read here on the
// calling thread.
static inline const char *gatehouse_mosquitto_error_text(int rc) {
    return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

// A refused CONNECT: the MQTT 5 reason code (with its number) or the MQTT 3.1.1 return code.
// The text lives in a per-thread buffer until the next call on the thread: copy it at once.
static inline const char *gatehouse_mosquitto_refusal_text(int code, int protocol_version) {
    static _Thread_local char text[200];
    if (protocol_version == MQTT_PROTOCOL_V5) {
        snprintf(text, sizeof text, "the broker refused the connection: %s (0x%x)", mosquitto_reason_string(code), (unsigned)code);
    } else {
        snprintf(text, sizeof text, "the broker refused the connection: %s", mosquitto_connack_string(code));
    }
    return text;
}
