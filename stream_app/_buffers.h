/*
 * Holding a caller's array for the length of one call, shared by the label join's C modules
 * (_id_slots.c, _summary_rows.c).
 *
 * Why a header: both take numpy arrays through the buffer protocol, must check the item size
 * (a wrong dtype would otherwise be read as garbage) and must release every view on every
 * exit path. One copy keeps those rules the same in both.
 */
#ifndef DRIFTLINE_BUFFERS_H
#define DRIFTLINE_BUFFERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    Py_buffer view;
    int held;
} Held;

/* A C-contiguous view of obj (writable if asked) whose length is a whole number of items. */
static int hold(PyObject *obj, Held *h, int writable, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, &h->view, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS
                                                    : PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    h->held = 1;
    if (h->view.len % itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: not an array of %zd-byte items", what, itemsize);
        return -1;
    }
    return 0;
}

/* Safe to call on a Held that was never held or is already released. */
static void release(Held *h) {
    if (h->held) {
        PyBuffer_Release(&h->view);
        h->held = 0;
    }
}

#endif
