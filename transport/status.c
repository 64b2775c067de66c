/*  transport/status.c - reply status names (docs/protocol.md section 4).
*/
#include <zrocket.h>

static const char *s_names [ZR_STATUS_COUNT] = {
    [ZR_OK] = "OK",
    [ZR_SEND_OK] = "SEND_OK",
    [ZR_FLUSH_DISK_TIMEOUT] = "FLUSH_DISK_TIMEOUT",
    [ZR_FLUSH_SLAVE_TIMEOUT] = "FLUSH_SLAVE_TIMEOUT",
    [ZR_SLAVE_NOT_AVAILABLE] = "SLAVE_NOT_AVAILABLE",
    [ZR_NO_NEW_MSG] = "NO_NEW_MSG",
    [ZR_BUSY] = "BUSY",
    [ZR_MALFORMED] = "MALFORMED",
    [ZR_BAD_VERSION] = "BAD_VERSION",
    [ZR_UNKNOWN_COMMAND] = "UNKNOWN_COMMAND",
    [ZR_BAD_ARGUMENT] = "BAD_ARGUMENT",
    [ZR_TOPIC_NOT_FOUND] = "TOPIC_NOT_FOUND",
    [ZR_QUEUE_NOT_FOUND] = "QUEUE_NOT_FOUND",
    [ZR_OFFSET_OUT_OF_RANGE] = "OFFSET_OUT_OF_RANGE",
    [ZR_MSG_TOO_LARGE] = "MSG_TOO_LARGE",
    [ZR_DISK_FULL] = "DISK_FULL",
    [ZR_STORE_ERROR] = "STORE_ERROR",
    [ZR_NOT_FOUND] = "NOT_FOUND",
    [ZR_SHUTTING_DOWN] = "SHUTTING_DOWN",
    [ZR_LEASE_HELD] = "LEASE_HELD",
    [ZR_LEASE_INVALID] = "LEASE_INVALID",
    [ZR_NOT_MASTER] = "NOT_MASTER",
    [ZR_TIMEOUT] = "TIMEOUT",
    [ZR_UNKNOWN_STATUS] = "UNKNOWN_STATUS",
};

const char *
zr_status_str (zr_status_t status)
{
    if ((int) status < 0 || status >= ZR_STATUS_COUNT || !s_names [status])
        return "UNKNOWN_STATUS";
    return s_names [status];
}

zr_status_t
zr_status_parse (const char *name)
{
    if (name)
        for (int i = 0; i < ZR_STATUS_COUNT; i++)
            if (s_names [i] && streq (s_names [i], name))
                return (zr_status_t) i;
    return ZR_UNKNOWN_STATUS;
}

bool
zr_status_stored (zr_status_t status)
{
    return status == ZR_SEND_OK || status == ZR_FLUSH_DISK_TIMEOUT
        || status == ZR_FLUSH_SLAVE_TIMEOUT
        || status == ZR_SLAVE_NOT_AVAILABLE;
}
