/*  actors/config.h - builds a settings tree from flags, ZR_* environment
    variables, an optional ZPL config file and the defaults of a settings
    table (actors/settings.h), in that order of precedence, and checks
    every value's type before anything starts.

    The result is a zconfig_t whose "SECTION/NAME" entries hold every
    setting that has a value; it is what zr_broker_new takes.
*/
#ifndef ZR_CONFIG_H_INCLUDED
#define ZR_CONFIG_H_INCLUDED

#include <czmq.h>
#include "actors/settings.h"

//  Builds the settings of section from table.
//
//  argv[0 .. argc-1] are flags only (no command name): --NAME VALUE,
//  --NAME=VALUE for each table entry, and --config FILE. A BOOL setting
//  given as the last flag or followed by another flag may omit its value
//  (--auto-create means true). The environment gives ZR_NAME (upper case,
//  '-' -> '_') and ZR_CONFIG (a config file when --config is absent).
//  A config file is loaded with zconfig_load; its keys under section must
//  be names from table.
//
//  Returns 0 and sets *cfg_p (caller destroys), or -1 with one line in
//  err (size errsize) naming the flag, variable or file at fault.
int
    zr_config_build (const zr_setting_t *table, const char *section,
                     int argc, char **argv, zconfig_t **cfg_p,
                     char *err, size_t errsize);

//  Like zr_config_build, with environment variables named env_prefix +
//  NAME ("ZR_NS_" gives ZR_NS_BIND) instead of ZR_NAME. The config file
//  variable stays ZR_CONFIG.
int
    zr_config_build_env (const zr_setting_t *table, const char *section,
                         const char *env_prefix, int argc, char **argv,
                         zconfig_t **cfg_p, char *err, size_t errsize);

//  Checks text against the setting's type. Returns 0, or -1 with a
//  reason in err ("'abc' is not a number").
int
    zr_config_check (const zr_setting_t *setting, const char *text,
                     char *err, size_t errsize);

//  Writes the environment variable name of a setting ("ZR_MAX_MSG_SIZE")
//  into buf.
void
    zr_config_env_name (const char *name, char *buf, size_t size);

//  Same with another prefix than "ZR_".
void
    zr_config_env_name_prefix (const char *prefix, const char *name,
                               char *buf, size_t size);

//  Prints a --help block for every setting of table to stream: flag,
//  default, env var, help line.
void
    zr_config_print_help (const zr_setting_t *table, const char *section,
                          FILE *stream);

//  Same with environment variables named env_prefix + NAME.
void
    zr_config_print_help_env (const zr_setting_t *table,
                              const char *section, const char *env_prefix,
                              FILE *stream);

#endif
