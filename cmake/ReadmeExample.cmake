# The first ```c block of README.md becomes the program cf_readme_example
# and the test readme.example (label "example"), so the README cannot drift
# from the header. Included from the top-level CMakeLists.txt.
set(cf_readme "${CMAKE_CURRENT_SOURCE_DIR}/README.md")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${cf_readme}")

file(READ "${cf_readme}" cf_readme_text)
string(FIND "${cf_readme_text}" "```c\n" cf_readme_start)
if(cf_readme_start EQUAL -1)
    message(FATAL_ERROR "README.md: no ```c code block")
endif()
math(EXPR cf_readme_start "${cf_readme_start} + 5")
string(SUBSTRING "${cf_readme_text}" ${cf_readme_start} -1 cf_readme_code)
string(FIND "${cf_readme_code}" "\n```" cf_readme_end)
string(SUBSTRING "${cf_readme_code}" 0 ${cf_readme_end} cf_readme_code)

# Written only when it changed, so a re-configure does not rebuild it.
file(CONFIGURE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/readme_example.c"
     CONTENT "${cf_readme_code}\n" @ONLY)
add_executable(cf_readme_example
               "${CMAKE_CURRENT_BINARY_DIR}/readme_example.c")
target_link_libraries(cf_readme_example PRIVATE cfutures)
add_test(NAME readme.example COMMAND cf_readme_example)
set_tests_properties(readme.example PROPERTIES
    TIMEOUT ${CF_TEST_TIMEOUT} LABELS example)
