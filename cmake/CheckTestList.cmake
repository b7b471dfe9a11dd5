# cmake -DPROGRAM=<test binary> -DEXPECTED=<a,b,c> -P CheckTestList.cmake
#
# Fails unless `PROGRAM --list` prints exactly the test names that CMake
# found in the TEST(...) and POOL_TEST(...) lines of its source (EXPECTED,
# comma-separated): a test the pattern missed would otherwise never run.
execute_process(COMMAND "${PROGRAM}" --list
                OUTPUT_VARIABLE listed
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} --list failed: ${status}")
endif()
string(REGEX REPLACE "\n$" "" listed "${listed}")
string(REPLACE "\n" ";" listed "${listed}")
string(REPLACE "," ";" expected "${EXPECTED}")
list(SORT listed)
list(SORT expected)
if(NOT listed STREQUAL expected)
    set(missing ${listed})
    list(REMOVE_ITEM missing ${expected})
    set(extra ${expected})
    list(REMOVE_ITEM extra ${listed})
    set(why "")
    if(missing)
        list(JOIN missing ", " missing)
        string(APPEND why "tests that CMake did not find in a TEST(...) "
               "or POOL_TEST(...) line, so CTest never runs them: "
               "${missing}. Write each as TEST(name) or POOL_TEST(name) at "
               "the start of a line, name in [a-z0-9_]. ")
    endif()
    if(extra)
        list(JOIN extra ", " extra)
        string(APPEND why "TEST(...) lines the binary does not have: "
               "${extra}. ")
    endif()
    message(FATAL_ERROR "${PROGRAM}: ${why}")
endif()
message(STATUS "${PROGRAM}: all tests registered with CTest")
