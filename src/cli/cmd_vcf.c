/* placeholder, replaced below */
#include "cli.h"
int ms_cmd_vcf(int argc, char **argv) { (void)argc; (void)argv; return 2; }
