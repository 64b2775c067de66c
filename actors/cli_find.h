/*  actors/cli_find.h - `zrocket msg find` (docs/protocol.md section 15).
*/
#ifndef ZR_CLI_FIND_H_INCLUDED
#define ZR_CLI_FIND_H_INCLUDED

//  zrocket msg find --topic T (--id ID | --key K) [--max N]; argv [0] is
//  "find". Returns the exit status.
int zr_cli_msg_find (int argc, char **argv);

#endif
