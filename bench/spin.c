/* placeholder */
typedef int cf_bench_spin_placeholder;
