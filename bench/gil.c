/* placeholder */
typedef int cf_bench_gil_placeholder;
