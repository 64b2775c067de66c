/*  actors/cli.h - the `zrocket` command line: one function per command,
    each taking the arguments after the command name (argv[0] is the
    command name) and returning the process exit status.

    Exit statuses: 0 success; 1 runtime failure (no broker answering,
    rejected request); 2 usage error (unknown command or flag, bad value);
    send: 3 when all messages were stored but some durability was not
    confirmed; consume: 2 when --count was given and fewer arrived.
*/
#ifndef ZR_CLI_H_INCLUDED
#define ZR_CLI_H_INCLUDED

#include <zrocket.h>

//  Entry point: dispatches argv[1] (the command).
int zr_cli_main (int argc, char **argv);

int zr_cli_broker (int argc, char **argv);
int zr_cli_dev (int argc, char **argv);
int zr_cli_topic (int argc, char **argv);
int zr_cli_send (int argc, char **argv);
int zr_cli_consume (int argc, char **argv);
int zr_cli_stats (int argc, char **argv);
int zr_cli_msg (int argc, char **argv);
int zr_cli_ping (int argc, char **argv);
int zr_cli_nameserver (int argc, char **argv);
int zr_cli_cluster (int argc, char **argv);
int zr_cli_route (int argc, char **argv);
int zr_cli_admin (int argc, char **argv);
//  Written in actors/cli_group.c.
int zr_cli_group (int argc, char **argv);
int zr_cli_dlq (int argc, char **argv);
//  Written in actors/bench.c.
int zr_cli_bench (int argc, char **argv);
int zr_cli_digest (int argc, char **argv);

//  --------------------------------------------------------------------
//  Shared helpers for the client commands.

//  One option of a command: name without "--", metavar (NULL: a flag
//  that takes no value), help line. A table ends with a NULL name.
typedef struct {
    const char *name;
    const char *meta;
    const char *help;
} zr_cli_opt_t;

//  Most positional arguments a command can take.
#define ZR_CLI_MAX_POS 256

//  Parsed arguments of a command.
typedef struct {
    const zr_cli_opt_t *opts;
    const char *value [32];         //  last value per option (or "" flag)
    zlist_t *repeated [32];         //  every value per option (borrowed)
    const char *pos [ZR_CLI_MAX_POS];   //  positional arguments
    int npos;
    bool help;                      //  --help was given
} zr_cli_args_t;

//  Parses argv[1..argc-1] against opts plus the common --help. At most
//  max_pos positional arguments. Returns 0, or -1 after printing one
//  "zrocket CMD: ..." line to stderr. Destroy with zr_cli_args_free.
int zr_cli_parse (const char *cmd, const zr_cli_opt_t *opts, int max_pos,
                  int argc, char **argv, zr_cli_args_t *args);
void zr_cli_args_free (zr_cli_args_t *args);

//  Value of option name, or NULL.
const char *zr_cli_get (zr_cli_args_t *args, const char *name);

//  Reads an integer option in [min, max] (dflt when absent). Returns 0,
//  or -1 after printing "zrocket: --NAME: 'x' is not a number".
int zr_cli_get_int (zr_cli_args_t *args, const char *name, int64_t dflt,
                    int64_t min, int64_t max, int64_t *value);

//  Parses a time argument (consume --from, group reset --to): ms since
//  the epoch, or ISO-8601 local time "YYYY-MM-DDTHH:MM[:SS]" (a
//  trailing Z means UTC). Returns 0 or -1.
int zr_cli_parse_time (const char *text, int64_t *ms);

//  Prints the usage of a command: synopsis, description, options.
void zr_cli_usage (FILE *stream, const char *synopsis, const char *text,
                   const zr_cli_opt_t *opts);

//  The options every client command takes (--broker, --nameserver,
//  --interface, --cluster, --timeout-ms), to put at the end of a
//  command's table.
#define ZR_CLI_CLIENT_OPTS \
    { "broker", "ENDPOINT", \
      "broker to talk to (env ZR_BROKER; see \"Finding the fabric\")" }, \
    { "nameserver", "LIST", \
      "nameservers, comma-separated endpoints (env ZR_NAMESERVER)" }, \
    { "interface", "IFACE", \
      "network interface to hear nameserver beacons on " \
      "(env ZR_INTERFACE)" }, \
    { "cluster", "NAME", \
      "cluster whose beacons count (env ZR_CLUSTER; default " \
      "DefaultCluster)" }, \
    { "timeout-ms", "MS", "request timeout, ms (default 3000)" }

//  Help text on how client commands find brokers and nameservers.
#define ZR_CLI_FABRIC_HELP \
    "\n\nFinding the fabric (first match wins): --broker / --nameserver;\n" \
    "$ZR_BROKER / $ZR_NAMESERVER; a nameserver answering on\n" \
    "127.0.0.1:9876 within 200 ms; a nameserver beacon of the cluster\n" \
    "(listened for up to 2 s; listening sends nothing); a broker on\n" \
    "127.0.0.1:10911. Given both a broker and a nameserver, stats, msg\n" \
    "and ping use the broker, the other commands the nameserver."

//  Where a client command's brokers and nameservers are.
typedef struct {
    char *broker;               //  a broker endpoint, or NULL
    char *nameservers;          //  comma-separated endpoints, or NULL
    int timeout_ms;             //  request timeout
} zr_cli_fabric_t;

//  Finds the fabric as ZR_CLI_FABRIC_HELP says. Returns 0 with at least
//  one of broker / nameservers set, or the exit status after printing one
//  line: 2 (bad flag value) or 1 ("zrocket: no nameserver or broker found
//  (tried ...)"). Free with zr_cli_fabric_free.
int zr_cli_fabric_find (zr_cli_args_t *args, zr_cli_fabric_t *fabric);
void zr_cli_fabric_free (zr_cli_fabric_t *fabric);

//  Broker endpoint and timeout from args. Returns 0 or -1 (bad value,
//  printed).
int zr_cli_client_opts (zr_cli_args_t *args, const char **endpoint,
                        int *timeout_ms);

//  Pings the broker; returns 0, or -1 after printing "zrocket: no broker
//  answering at ENDPOINT within N ms". *group (may be NULL) receives the
//  broker group name (caller frees).
int zr_cli_ping_broker (const char *endpoint, int timeout_ms,
                        char **group);

//  Sends cmd (with a "topic" field when topic is not NULL) to the first
//  nameserver of the comma-separated list that answers. Returns its reply
//  (any status; caller destroys) and sets *which (may be NULL) to its
//  endpoint (caller frees); or NULL after printing "zrocket: no
//  nameserver answering at LIST within N ms".
struct _zr_reply_t *
    zr_cli_ns_call (const char *nameservers, const char *cmd,
                    const char *topic, int timeout_ms, char **which);

#endif
