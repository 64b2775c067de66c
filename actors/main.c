/*  actors/main.c - the `zrocket` executable: see actors/cli.c. */
#include "actors/cli.h"

int
main (int argc, char *argv [])
{
    //  CZMQ logs to stdout by default; stdout carries the commands'
    //  results (send lines, consumed bodies), so logs go to stderr.
    zsys_set_logstream (stderr);
    return zr_cli_main (argc, argv);
}
