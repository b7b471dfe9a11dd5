// placeholder until the workloads land
#include "common.hh"
int main(int argc, char **argv) { return bench::run_main(argc, argv); }
