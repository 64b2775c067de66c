/*  actors/config.c - flags > environment > config file > defaults, with
    every value type-checked (see config.h).
*/
#include "actors/config.h"

#include <unistd.h>

#define ZR_CONFIG_FILE_MAX (1024 * 1024)

static const zr_setting_t *
s_find (const zr_setting_t *table, const char *name, size_t len)
{
    for (const zr_setting_t *s = table; s->name; s++)
        if (strlen (s->name) == len && strncmp (s->name, name, len) == 0)
            return s;
    return NULL;
}

void
zr_config_env_name_prefix (const char *prefix, const char *name, char *buf,
                           size_t size)
{
    if (size == 0)
        return;
    snprintf (buf, size, "%s", prefix);
    size_t i = strlen (buf);
    for (const char *p = name; *p && i + 1 < size; p++, i++)
        buf [i] = *p == '-' ? '_' : (char) toupper ((unsigned char) *p);
    buf [i < size ? i : size - 1] = 0;
}

void
zr_config_env_name (const char *name, char *buf, size_t size)
{
    zr_config_env_name_prefix ("ZR_", name, buf, size);
}

//  True when choice is one of the '|'-separated words of choices.
static bool
s_choice_ok (const char *choices, const char *text)
{
    size_t len = strlen (text);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr (p, '|');
        size_t wlen = bar ? (size_t) (bar - p) : strlen (p);
        if (wlen == len && strncmp (p, text, len) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

int
zr_config_check (const zr_setting_t *setting, const char *text,
                 char *err, size_t errsize)
{
    if (setting->type == ZR_SETTING_INT) {
        int64_t v;
        if (zr_setting_parse_int (text, &v)) {
            snprintf (err, errsize, "'%s' is not a number", text);
            return -1;
        }
    }
    else
    if (setting->type == ZR_SETTING_BOOL) {
        bool b;
        if (zr_setting_parse_bool (text, &b)) {
            snprintf (err, errsize,
                      "'%s' is not a boolean (true/false/yes/no/on/off/1/0)",
                      text);
            return -1;
        }
    }
    else
    if (setting->type == ZR_SETTING_ENUM) {
        if (!s_choice_ok (setting->choices, text)) {
            snprintf (err, errsize, "'%s' is not one of %s", text,
                      setting->choices ? setting->choices : "");
            return -1;
        }
    }
    return 0;
}

//  Loads and checks a config file; NULL with err on failure.
static zconfig_t *
s_load_file (const zr_setting_t *table, const char *section,
             const char *file, char *err, size_t errsize)
{
    if (access (file, R_OK) != 0) {
        snprintf (err, errsize, "cannot read config file '%s': %s", file,
                  strerror (errno));
        return NULL;
    }
    //  Read it here rather than with zconfig_load, which leaks on a
    //  syntax error (CZMQ 4.2)
    FILE *stream = fopen (file, "rb");
    char *text = NULL;
    size_t size = 0;
    if (stream) {
        text = (char *) malloc (ZR_CONFIG_FILE_MAX + 1);
        assert (text);
        size = fread (text, 1, ZR_CONFIG_FILE_MAX + 1, stream);
        fclose (stream);
    }
    if (!stream || size > ZR_CONFIG_FILE_MAX) {
        snprintf (err, errsize, "cannot read config file '%s': %s", file,
                  stream ? "larger than 1 MiB" : strerror (errno));
        free (text);
        return NULL;
    }
    text [size] = 0;
    zconfig_t *root = zconfig_str_load (text);
    free (text);
    if (!root) {
        snprintf (err, errsize,
                  "config file '%s' is not valid ZPL (CZMQ zconfig format)",
                  file);
        return NULL;
    }
    zconfig_t *sect = zconfig_locate (root, section);
    if (sect) {
        for (zconfig_t *item = zconfig_child (sect); item;
             item = zconfig_next (item)) {
            const char *name = zconfig_name (item);
            const zr_setting_t *s = s_find (table, name, strlen (name));
            if (!s) {
                snprintf (err, errsize,
                          "config file '%s': unknown setting %s/%s", file,
                          section, name);
                zconfig_destroy (&root);
                return NULL;
            }
        }
    }
    return root;
}

int
zr_config_build (const zr_setting_t *table, const char *section,
                 int argc, char **argv, zconfig_t **cfg_p,
                 char *err, size_t errsize)
{
    return zr_config_build_env (table, section, "ZR_", argc, argv, cfg_p,
                                err, errsize);
}

int
zr_config_build_env (const zr_setting_t *table, const char *section,
                     const char *env_prefix, int argc, char **argv,
                     zconfig_t **cfg_p, char *err, size_t errsize)
{
    assert (table && section && cfg_p && err);
    *cfg_p = NULL;
    size_t count = 0;
    while (table [count].name)
        count++;
    //  Values given by flags, indexed like table (borrowed from argv)
    const char **flag = (const char **) zmalloc ((count + 1) * sizeof *flag);
    const char *config_file = NULL;
    int rc = -1;
    zconfig_t *file = NULL;
    zconfig_t *cfg = NULL;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv [i];
        if (strncmp (arg, "--", 2) != 0 || arg [2] == 0) {
            snprintf (err, errsize, "unexpected argument '%s'", arg);
            goto done;
        }
        const char *name = arg + 2;
        const char *eq = strchr (name, '=');
        size_t len = eq ? (size_t) (eq - name) : strlen (name);
        const char *value = eq ? eq + 1 : NULL;
        bool is_config = len == 6 && strncmp (name, "config", 6) == 0;
        const zr_setting_t *s = is_config ? NULL : s_find (table, name, len);
        if (!is_config && !s) {
            snprintf (err, errsize, "unknown flag '--%.*s' (see --help)",
                      (int) len, name);
            goto done;
        }
        if (!value) {
            bool next_is_value = i + 1 < argc
                && strncmp (argv [i + 1], "--", 2) != 0;
            if (s && s->type == ZR_SETTING_BOOL && !next_is_value)
                value = "true";
            else
            if (i + 1 < argc)
                value = argv [++i];
            else {
                snprintf (err, errsize, "--%.*s needs a value", (int) len,
                          name);
                goto done;
            }
        }
        if (is_config)
            config_file = value;
        else {
            char why [256];
            if (zr_config_check (s, value, why, sizeof why)) {
                snprintf (err, errsize, "--%s: %s", s->name, why);
                goto done;
            }
            flag [s - table] = value;
        }
    }
    if (!config_file) {
        const char *env = getenv ("ZR_CONFIG");
        if (env && *env)
            config_file = env;
    }
    if (config_file) {
        file = s_load_file (table, section, config_file, err, errsize);
        if (!file)
            goto done;
    }
    cfg = zconfig_new ("root", NULL);
    for (size_t i = 0; i < count; i++) {
        const zr_setting_t *s = &table [i];
        char envname [128];
        zr_config_env_name_prefix (env_prefix, s->name, envname,
                                   sizeof envname);
        char path [256];
        snprintf (path, sizeof path, "%s/%s", section, s->name);
        const char *value = flag [i];
        const char *origin = NULL;
        if (!value) {
            value = getenv (envname);
            origin = envname;
        }
        if (!value && file) {
            value = zconfig_get (file, path, NULL);
            origin = path;
        }
        if (!value) {
            value = s->dflt;
            origin = NULL;
        }
        if (!value)
            continue;
        char why [256];
        if (origin && zr_config_check (s, value, why, sizeof why)) {
            if (origin == envname)
                snprintf (err, errsize, "%s: %s", envname, why);
            else
                snprintf (err, errsize, "config file '%s': %s: %s",
                          config_file, path, why);
            goto done;
        }
        zconfig_put (cfg, path, value);
    }
    *cfg_p = cfg;
    cfg = NULL;
    rc = 0;
done:
    zconfig_destroy (&cfg);
    zconfig_destroy (&file);
    free (flag);
    return rc;
}

void
zr_config_print_help (const zr_setting_t *table, const char *section,
                      FILE *stream)
{
    zr_config_print_help_env (table, section, "ZR_", stream);
}

void
zr_config_print_help_env (const zr_setting_t *table, const char *section,
                          const char *env_prefix, FILE *stream)
{
    for (const zr_setting_t *s = table; s->name; s++) {
        char envname [128];
        zr_config_env_name_prefix (env_prefix, s->name, envname,
                                   sizeof envname);
        const char *meta = s->type == ZR_SETTING_INT ? "N"
                         : s->type == ZR_SETTING_BOOL ? "BOOL"
                         : s->type == ZR_SETTING_ENUM ? s->choices
                         : "TEXT";
        fprintf (stream, "  --%s %s\n      %s\n", s->name, meta, s->help);
        fprintf (stream, "      default: %s; env: %s; config: %s/%s\n",
                 s->dflt ? s->dflt : "(none)", envname, section, s->name);
    }
}
