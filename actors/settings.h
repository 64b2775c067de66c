/*  actors/settings.h - the settings tables that `zrocket COMMAND --help`
    lists and that flags, ZR_* environment variables and config files fill.

    A setting has a name ("max-msg-size"), which is also its flag
    (--max-msg-size), its environment variable (ZR_MAX_MSG_SIZE: upper
    case, '-' -> '_') and its key under the section in a ZPL config file
    (broker/max-msg-size). Precedence: flag, then environment, then
    config file, then the default here.
*/
#ifndef ZR_SETTINGS_H_INCLUDED
#define ZR_SETTINGS_H_INCLUDED

#include <czmq.h>

typedef enum {
    ZR_SETTING_STR,
    ZR_SETTING_INT,         //  decimal, >= 0; sizes accept K/M/G suffix
    ZR_SETTING_BOOL,        //  true/false/1/0/yes/no/on/off
    ZR_SETTING_ENUM         //  one of the '|'-separated words in choices
} zr_setting_type_t;

typedef struct {
    const char *name;           //  flag and key name
    zr_setting_type_t type;
    const char *dflt;           //  default as text (NULL: none)
    const char *choices;        //  ENUM: "async|sync"
    const char *help;           //  one line
} zr_setting_t;

//  The broker's settings (section "broker"), ended by a NULL name. The
//  broker actor reads exactly these keys from its zconfig_t.
extern const zr_setting_t zr_broker_settings [];

//  The nameserver's settings (section "nameserver").
extern const zr_setting_t zr_nameserver_settings [];

//  Returns the value of setting name in section of cfg (cfg may be NULL),
//  or the table's default. Borrowed.
const char *
    zr_setting_get (zconfig_t *cfg, const char *section,
                    const zr_setting_t *table, const char *name);

//  Parses a size or count ("4M", "65536"); returns 0 or -1.
int
    zr_setting_parse_int (const char *text, int64_t *value);

//  Parses a boolean word; returns 0 or -1.
int
    zr_setting_parse_bool (const char *text, bool *value);

#endif
