// libmosquitto (Debian's libmosquitto-dev): the Eclipse Mosquitto project's MQTT 3.1.1/5 client.
#include <mosquitto.h>
#include <mqtt_protocol.h>
