# Run by CMake right after llama.cpp's own project() call (CMAKE_PROJECT_llama.cpp_INCLUDE, set by
# scripts/setup.sh and the LLM image). The Python bindings load only libllama and libggml; the
# common library (the command-line tools' argument parsing, chat parsers, downloads) is not built.
# llama-cpp-python forces LLAMA_BUILD_COMMON on in the cache; a variable of llama.cpp's directory
# takes precedence there, and everything that would use the common library is gated on it.
set(LLAMA_BUILD_COMMON OFF)
