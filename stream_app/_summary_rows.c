/*
 * The label join's take of waiting summaries, in C.
 *
 * Why: a label for a random prediction reads one row of one segment among hundreds
 * (stream_app/summary_columns.py). In Python each row cost a numpy structured-record read,
 * a state read and write, and a tuple: about a fifth of what a worker joining label
 * envelopes spent, more than the probe of the id index that found the rows.
 *
 * The segments, their layout and the rules stay the Python module's: this only reads the
 * packed records numpy made and writes the row states numpy owns, and answers exactly what
 * SummarySegment.row answers (the property tests compare both).
 *
 * take_rows(taken, positions, rows, which, segments, layouts, took) -> int
 *     For each i: row ``rows[i]`` of ``segments[which[i]]``. A waiting row (state 0) goes
 *     (state 2), its summary is put at ``taken[positions[i]]`` as SummaryRow's plain tuple
 *     and ``took[i]`` is set to 1; a row not waiting is left as it is. Returns how many
 *     went. ``layouts[j]`` is segment j's record layout, as summary_columns._layout makes
 *     it: (itemsize, then offset and size of m, w, y, k; then offsets of s, x, o), a
 *     size of 0 for y meaning the prediction is a float64 kept as it is.
 * by_window(summaries, labels, identities) -> list
 *     The pairs (a summary row, its label, the label's (offset, position)) grouped by the
 *     summary's (model, window start, window end): a list of (window, columns), windows in
 *     order of first appearance, columns WindowPairs' seven lists in the labels' order. The
 *     windows are told apart by a dict of (model, start, end) tuples, as
 *     JoinedColumns.by_window's Python does, so -0.0 and 0.0 are one window there too.
 *     Why: with labels for random predictions an envelope of 500 touches ~80 windows, and
 *     grouping in Python (a key, a lookup and seven appends per pair, or itemgetters per
 *     window) cost stage 1 as much as the take.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "_buffers.h"

#define WAITING 0
#define GONE 2

typedef struct {
    Py_buffer state;
    Py_buffer records;
    PyObject *models, *windows, *predicted, *kinds; /* new references (lists) */
    Py_ssize_t itemsize, m_off, m_size, w_off, w_size, y_off, y_size, k_off, k_size;
    Py_ssize_t s_off, x_off, o_off;
} Segment;

static void segment_release(Segment *s) {
    if (s->state.obj != NULL)
        PyBuffer_Release(&s->state);
    if (s->records.obj != NULL)
        PyBuffer_Release(&s->records);
    Py_CLEAR(s->models);
    Py_CLEAR(s->windows);
    Py_CLEAR(s->predicted);
    Py_CLEAR(s->kinds);
}

static PyObject *list_attribute(PyObject *obj, const char *name) {
    PyObject *value = PyObject_GetAttrString(obj, name);
    if (value != NULL && !PyList_Check(value)) {
        PyErr_Format(PyExc_TypeError, "take_rows: a segment's %s must be a list", name);
        Py_CLEAR(value);
    }
    return value;
}

static int code_size_ok(Py_ssize_t size) { return size == 1 || size == 2 || size == 4; }

static int segment_hold(Segment *s, PyObject *segment, PyObject *layout) {
    long long v[12];
    if (!PyTuple_Check(layout) || PyTuple_GET_SIZE(layout) != 12) {
        PyErr_SetString(PyExc_TypeError, "take_rows: a layout is a tuple of 12 ints");
        return -1;
    }
    for (int i = 0; i < 12; i++) {
        v[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(layout, i));
        if (v[i] == -1 && PyErr_Occurred())
            return -1;
    }
    s->itemsize = v[0];
    s->m_off = v[1], s->m_size = v[2], s->w_off = v[3], s->w_size = v[4];
    s->y_off = v[5], s->y_size = v[6], s->k_off = v[7], s->k_size = v[8];
    s->s_off = v[9], s->x_off = v[10], s->o_off = v[11];
    Py_ssize_t ends[] = {s->m_off + s->m_size, s->w_off + s->w_size,
                         s->y_off + (s->y_size ? s->y_size : 8), s->k_off + s->k_size,
                         s->s_off + 8, s->x_off + 8, s->o_off + 8};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        if (ends[i] > s->itemsize) {
            PyErr_SetString(PyExc_ValueError, "take_rows: a field is past its record");
            return -1;
        }
    }
    if (!code_size_ok(s->m_size) || !code_size_ok(s->w_size) || !code_size_ok(s->k_size) ||
        !(s->y_size == 0 || code_size_ok(s->y_size)) || s->m_off < 0 || s->w_off < 0 ||
        s->y_off < 0 || s->k_off < 0 || s->s_off < 0 || s->x_off < 0 || s->o_off < 0) {
        PyErr_SetString(PyExc_ValueError, "take_rows: a layout's sizes are not 1, 2 or 4");
        return -1;
    }
    PyObject *state = PyObject_GetAttrString(segment, "state");
    if (state == NULL)
        return -1;
    int held = PyObject_GetBuffer(state, &s->state, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS);
    Py_DECREF(state);
    if (held < 0)
        return -1;
    if (s->state.itemsize != 1) {
        PyErr_SetString(PyExc_TypeError, "take_rows: a segment's state must be uint8");
        return -1;
    }
    PyObject *records = PyObject_GetAttrString(segment, "records");
    if (records == NULL)
        return -1;
    held = PyObject_GetBuffer(records, &s->records, PyBUF_C_CONTIGUOUS);
    Py_DECREF(records);
    if (held < 0)
        return -1;
    if (s->records.len != s->state.len * s->itemsize) {
        PyErr_SetString(PyExc_ValueError, "take_rows: records and states of different lengths");
        return -1;
    }
    s->models = list_attribute(segment, "models");
    s->windows = s->models ? list_attribute(segment, "windows") : NULL;
    s->predicted = s->windows ? list_attribute(segment, "predicted") : NULL;
    s->kinds = s->predicted ? list_attribute(segment, "origin_kinds") : NULL;
    return s->kinds == NULL ? -1 : 0;
}

static uint32_t code_at(const char *record, Py_ssize_t offset, Py_ssize_t size) {
    const char *at = record + offset;
    if (size == 1)
        return *(const uint8_t *)at;
    if (size == 2) {
        uint16_t v;
        memcpy(&v, at, 2);
        return v;
    }
    uint32_t v;
    memcpy(&v, at, 4);
    return v;
}

static double double_at(const char *record, Py_ssize_t offset) {
    double v;
    memcpy(&v, record + offset, 8);
    return v;
}

/* list[code] as a new reference, or NULL with IndexError (what Python's list[code] says). */
static PyObject *coded(PyObject *list, uint32_t code) {
    if ((Py_ssize_t)code >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "take_rows: a code past its segment's values");
        return NULL;
    }
    return Py_NewRef(PyList_GET_ITEM(list, code));
}

/* The row's summary as SummaryRow's tuple: (model, start, end, predicted, score or None,
 * expires, origin kind, origin offset). */
static PyObject *summary_row(const Segment *s, Py_ssize_t row) {
    const char *record = (const char *)s->records.buf + row * s->itemsize;
    PyObject *window = coded(s->windows, code_at(record, s->w_off, s->w_size));
    if (window == NULL)
        return NULL;
    if (!PyTuple_Check(window) || PyTuple_GET_SIZE(window) != 2) {
        Py_DECREF(window);
        PyErr_SetString(PyExc_TypeError, "take_rows: a window must be a (start, end) tuple");
        return NULL;
    }
    PyObject *out = PyTuple_New(8);
    if (out == NULL) {
        Py_DECREF(window);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 1, Py_NewRef(PyTuple_GET_ITEM(window, 0)));
    PyTuple_SET_ITEM(out, 2, Py_NewRef(PyTuple_GET_ITEM(window, 1)));
    Py_DECREF(window);
    PyObject *model = coded(s->models, code_at(record, s->m_off, s->m_size));
    PyObject *predicted = s->y_size ? coded(s->predicted, code_at(record, s->y_off, s->y_size))
                                    : PyFloat_FromDouble(double_at(record, s->y_off));
    double score = double_at(record, s->s_off);
    PyObject *score_o = isnan(score) ? Py_NewRef(Py_None) : PyFloat_FromDouble(score);
    PyObject *expires = PyFloat_FromDouble(double_at(record, s->x_off));
    PyObject *kind = coded(s->kinds, code_at(record, s->k_off, s->k_size));
    int64_t offset;
    memcpy(&offset, record + s->o_off, 8);
    PyObject *offset_o = PyLong_FromLongLong(offset);
    PyObject *fields[] = {model, predicted, score_o, expires, kind, offset_o};
    int at[] = {0, 3, 4, 5, 6, 7};
    int failed = 0;
    for (int i = 0; i < 6; i++) {
        if (fields[i] == NULL) {
            failed = 1;
            PyTuple_SET_ITEM(out, at[i], Py_NewRef(Py_None));
        } else {
            PyTuple_SET_ITEM(out, at[i], fields[i]);
        }
    }
    if (failed) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *take_rows(PyObject *self, PyObject *args) {
    PyObject *taken, *positions_o, *rows_o, *which_o, *segments, *layouts, *took_o;
    if (!PyArg_ParseTuple(args, "O!OOOO!O!O", &PyList_Type, &taken, &positions_o, &rows_o,
                          &which_o, &PyList_Type, &segments, &PyList_Type, &layouts, &took_o))
        return NULL;
    Held positions = {0}, rows = {0}, which = {0}, took = {0};
    Segment *held = NULL;
    Py_ssize_t n_segments = PyList_GET_SIZE(segments), ready = 0;
    PyObject *result = NULL;
    if (hold(positions_o, &positions, 0, 8, "positions") < 0 || hold(rows_o, &rows, 0, 8, "rows") < 0 ||
        hold(which_o, &which, 0, 8, "which") < 0 || hold(took_o, &took, 1, 1, "took") < 0)
        goto done;
    Py_ssize_t n = rows.view.len / 8;
    if (positions.view.len / 8 != n || which.view.len / 8 != n || took.view.len != n ||
        PyList_GET_SIZE(layouts) != n_segments) {
        PyErr_SetString(PyExc_ValueError, "take_rows: arrays of mismatched sizes");
        goto done;
    }
    held = PyMem_Calloc(n_segments ? n_segments : 1, sizeof(Segment));
    if (held == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; ready < n_segments; ready++) {
        if (segment_hold(&held[ready], PyList_GET_ITEM(segments, ready),
                         PyList_GET_ITEM(layouts, ready)) < 0) {
            ready++; /* released below, whatever it holds */
            goto done;
        }
    }
    const int64_t *at = positions.view.buf, *row_of = rows.view.buf, *segment_of = which.view.buf;
    uint8_t *went = took.view.buf;
    Py_ssize_t size = PyList_GET_SIZE(taken);
    /* Every index checked before any row goes: a bad call changes nothing. */
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t j = segment_of[i];
        if (j < 0 || j >= n_segments || at[i] < 0 || at[i] >= size || row_of[i] < 0 ||
            row_of[i] >= held[j].state.len) {
            PyErr_SetString(PyExc_IndexError, "take_rows: a segment, row or position out of range");
            goto done;
        }
    }
    long long gone = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Segment *s = &held[segment_of[i]];
        int64_t row = row_of[i], position = at[i];
        uint8_t *state = (uint8_t *)s->state.buf + row;
        went[i] = 0;
        if (*state != WAITING)
            continue;
        PyObject *summary = summary_row(s, row);
        if (summary == NULL)
            goto done;
        PyList_SetItem(taken, position, summary); /* steals it; drops what was there */
        *state = GONE;
        went[i] = 1;
        gone++;
    }
    result = PyLong_FromLongLong(gone);
done:
    for (Py_ssize_t j = 0; j < ready; j++)
        segment_release(&held[j]);
    PyMem_Free(held);
    release(&positions);
    release(&rows);
    release(&which);
    release(&took);
    return result;
}

#define PAIR_COLUMNS 7

/* Append pair i's seven values to a window's columns; -1 on error. */
static int append_pair(PyObject *columns, PyObject *summary, PyObject *label, PyObject *identity) {
    PyObject *values[PAIR_COLUMNS] = {
        label,
        PyTuple_GET_ITEM(summary, 3), /* predicted */
        PyTuple_GET_ITEM(summary, 4), /* score */
        PyTuple_GET_ITEM(summary, 6), /* origin kind */
        PyTuple_GET_ITEM(summary, 7), /* origin offset */
        PyTuple_GET_ITEM(identity, 0), /* label offset */
        PyTuple_GET_ITEM(identity, 1), /* label position */
    };
    for (int c = 0; c < PAIR_COLUMNS; c++)
        if (PyList_Append(PyList_GET_ITEM(columns, c), values[c]) < 0)
            return -1;
    return 0;
}

/* A new window's (window, columns) entry in out and index; its columns (borrowed), or NULL. */
static PyObject *new_window(PyObject *out, PyObject *index, PyObject *window) {
    PyObject *columns = PyList_New(PAIR_COLUMNS);
    if (columns == NULL)
        return NULL;
    for (int c = 0; c < PAIR_COLUMNS; c++) {
        PyObject *column = PyList_New(0);
        if (column == NULL) {
            Py_DECREF(columns);
            return NULL;
        }
        PyList_SET_ITEM(columns, c, column);
    }
    PyObject *entry = PyTuple_Pack(2, window, columns);
    Py_DECREF(columns); /* entry holds it */
    if (entry == NULL)
        return NULL;
    int failed = PyDict_SetItem(index, window, columns) < 0 || PyList_Append(out, entry) < 0;
    Py_DECREF(entry);
    return failed ? NULL : columns;
}

static PyObject *by_window(PyObject *self, PyObject *args) {
    PyObject *summaries_l, *labels_l, *identities_l;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyList_Type, &summaries_l, &PyList_Type, &labels_l,
                          &PyList_Type, &identities_l))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(summaries_l);
    if (PyList_GET_SIZE(labels_l) != n || PyList_GET_SIZE(identities_l) != n) {
        PyErr_SetString(PyExc_ValueError,
                        "by_window: summaries, labels and identities differ in length");
        return NULL;
    }
    /* Tuples: the dict lookups run the windows' own __eq__, which must not be able to
     * change what the loop walks. */
    PyObject *summaries = PyList_AsTuple(summaries_l), *labels = PyList_AsTuple(labels_l);
    PyObject *identities = PyList_AsTuple(identities_l);
    PyObject *out = PyList_New(0), *index = PyDict_New();
    if (summaries == NULL || labels == NULL || identities == NULL || out == NULL || index == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *summary = PyTuple_GET_ITEM(summaries, i);
        PyObject *identity = PyTuple_GET_ITEM(identities, i);
        if (!PyTuple_Check(summary) || PyTuple_GET_SIZE(summary) != 8 || !PyTuple_Check(identity) ||
            PyTuple_GET_SIZE(identity) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "by_window: pair %zd is not a summary row of 8 and an identity of 2", i);
            goto fail;
        }
        PyObject *window = PyTuple_GetSlice(summary, 0, 3); /* (model, start, end) */
        if (window == NULL)
            goto fail;
        PyObject *columns = PyDict_GetItemWithError(index, window); /* borrowed */
        if (columns == NULL && !PyErr_Occurred())
            columns = new_window(out, index, window);
        Py_DECREF(window);
        if (columns == NULL ||
            append_pair(columns, summary, PyTuple_GET_ITEM(labels, i), identity) < 0)
            goto fail;
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    Py_XDECREF(index);
    Py_XDECREF(summaries);
    Py_XDECREF(labels);
    Py_XDECREF(identities);
    return out;
}

static PyMethodDef methods[] = {
    {"by_window", by_window, METH_VARARGS,
     "The pairs grouped by their summary's (model, start, end), as (window, columns)."},
    {"take_rows", take_rows, METH_VARARGS,
     "The waiting rows' summaries into taken; those rows go. How many went."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_summary_rows", NULL, -1, methods};

PyMODINIT_FUNC PyInit__summary_rows(void) { return PyModule_Create(&module); }
