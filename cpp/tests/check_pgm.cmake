# ctest helper: FILE must be the binary PGM (P5) grid of 9 images of 3 x 4 pixels that the example
# writes for tests/data/native_tiny.onnx: 3 x 3 cells of (6 + 2) x (8 + 2) pixels plus a 2-pixel border.
file(READ "${FILE}" _head LIMIT 13)
if(NOT _head STREQUAL "P5\n32 26\n255\n")
  message(FATAL_ERROR "${FILE} does not start with the expected PGM header: '${_head}'")
endif()
file(SIZE "${FILE}" _size)
if(NOT _size EQUAL 845)
  message(FATAL_ERROR "${FILE} has ${_size} bytes, expected 845 (13 header + 32 * 26 pixels)")
endif()
