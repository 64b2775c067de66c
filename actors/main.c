/*  actors/main.c - placeholder until the CLI lands. */
#include <zrocket.h>
int
main (int argc, char *argv [])
{
    return 0;
}
