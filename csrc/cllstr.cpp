// Python module entry of cllstr._C. The operators register through TORCH_LIBRARY_FRAGMENT(cllstr, m) /
// TORCH_LIBRARY_IMPL static initialisers in csrc/ops/; importing this (empty) module runs them. The C++ tests link
// the op sources without this file.
#include <Python.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",  // name
      "Native operators of cllstr (torch.ops.cllstr.*).",
      -1,  // size of per-interpreter state
      nullptr,
  };
  return PyModule_Create(&module_def);
}
}
