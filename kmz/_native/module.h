/* What the two module files share: buffer access with shape checks, and the
 * interrupt check a kernel calls while the GIL is released. Only module files
 * include Python.h; the kernels stay plain C. */
#ifndef KMZ_MODULE_H
#define KMZ_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "poll.h"

/* The state of a call that released the GIL. */
typedef struct {
    PyThreadState *thread;
} kmz_released;

/* kmz_poll.check: takes the GIL back, runs Python's signal handlers (a pending
 * Ctrl-C raises KeyboardInterrupt there), releases it again. */
static int kmz_check_signals(void *context) {
    kmz_released *released = context;
    PyEval_RestoreThread(released->thread);
    int stop = PyErr_CheckSignals() != 0;
    released->thread = PyEval_SaveThread();
    return stop;
}

#define KMZ_RELEASE(released, poll) \
    do { \
        (poll).check = kmz_check_signals; \
        (poll).context = &(released); \
        (poll).budget = KMZ_POLL_EVERY; \
        (released).thread = PyEval_SaveThread(); \
    } while (0)
#define KMZ_ACQUIRE(released) PyEval_RestoreThread((released).thread)

/* A C-contiguous buffer of `ndim` dimensions whose format character is one of
 * `formats` (e.g. "lq" for int64: numpy says 'l' on some platforms, 'q' on others),
 * writable if asked. Sets a Python error and returns -1 on a mismatch. */
static int kmz_buffer(PyObject *object, Py_buffer *view, const char *name, const char *formats,
                      int ndim, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) < 0)
        return -1;
    const char *got = view->format ? view->format : "B";
    if (*got == '@' || *got == '=' || *got == '<')
        got++;
    if (view->ndim != ndim || got[0] == 0 || got[1] != 0 || strchr(formats, got[0]) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %d-D buffer of format '%s', got %d-D '%s'",
                     name, ndim, formats, view->ndim, view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* After a kernel returned a status: set the matching Python error (a pending
 * KeyboardInterrupt is already set by kmz_check_signals). Returns -1 if failed. */
static int kmz_status(int status) {
    if (status == KMZ_NO_MEMORY) {
        PyErr_NoMemory();
        return -1;
    }
    if (status == KMZ_INTERRUPTED) {
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        return -1;
    }
    return 0;
}

#endif
