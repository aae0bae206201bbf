/*
 * The label join's hot loops over prediction ids, in C.
 *
 * Why: every prediction a model with a label task reads is put in the id index of its join
 * partition (stream_app/id_index.py) and hashed to that partition with Kafka's murmur2
 * (stream_app/label_join.py). In numpy both take several passes and rounds of probing per
 * batch; in Python one id at a time, a microsecond or more each. Together they were about a
 * fifth of what stage 1 spent on enveloped predictions with a label task.
 *
 * The index's layout and rules stay the Python module's: open addressing with linear
 * probing over two arrays (uint64 slot keys, 0 empty and 1 deleted; int64 handles). These
 * functions only walk and fill the arrays the Python object owns; a hash match is confirmed
 * by calling the caller's id_at(handle), so a lookup is exact whatever the hashes.
 *
 * probe(keys, handles, hashes, ids, id_at, out_handles, out_slots[, segments, row_bits])
 *     For each id: the handle and slot where it is, or -1 and -1. With ``segments`` (a dict
 *     from ``handle >> row_bits`` to objects with ``id_blob``, the UTF-8 ids end to end,
 *     and ``id_ends``, uint32 ends), a match is confirmed against the row's bytes here
 *     instead of by calling id_at: that call, three Python frames and a decoded string,
 *     was a seventh of what stage 1 spent on a label at a million outstanding.
 * insert(keys, handles, hashes, new_handles) -> int
 *     Place entries known to be absent, each at the first empty or deleted slot of its
 *     probe; returns how many deleted slots were reused. The caller keeps room (load).
 * partitions(ids, n_partitions, out) -> None
 *     Kafka's default partitioner of each id's UTF-8 bytes: murmur2 & 0x7fffffff, mod n.
 * partition(id, n_partitions) -> int
 *     The same for one id (a single label, a single event), without an array.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include "_buffers.h"

#define EMPTY 0u
#define DELETED 1u

static int power_of_two(Py_ssize_t n) { return n > 0 && (n & (n - 1)) == 0; }

/* Whether the id at ``handle`` (found by calling id_at) equals ``id``: 1, 0, or -1 on error. */
static int same_by_call(PyObject *id_at, int64_t handle_value, PyObject *id) {
    PyObject *handle = PyLong_FromLongLong(handle_value);
    if (handle == NULL)
        return -1;
    PyObject *found = PyObject_CallOneArg(id_at, handle);
    Py_DECREF(handle);
    if (found == NULL)
        return -1;
    int same = PyObject_RichCompareBool(found, id, Py_EQ);
    Py_DECREF(found);
    return same;
}

/* A segment's ids as the probe reads them: its id_blob and id_ends, held. */
typedef struct {
    int64_t number; /* handle >> row_bits */
    int held;
    Py_buffer blob, ends;
} SegmentIds;

/* The segments one probe has looked up, by number (open addressing, linear probing).
 * Why: finding a segment's ids (a PyLong, a dict lookup, two getattrs, two buffer exports)
 * cost more than comparing the bytes, and an envelope's labels hit the same few hundred
 * segments again and again. Released when the probe returns; beyond CACHED segments a
 * probe looks the others up at each hit, as it did before. */
#define CACHE_SLOTS 1024
#define CACHED (CACHE_SLOTS / 2)

typedef struct {
    SegmentIds *slots; /* CACHE_SLOTS of them, or NULL before the first hit */
    Py_ssize_t used;
} SegmentCache;

static void segment_ids_release(SegmentIds *ids) {
    if (ids->held) {
        PyBuffer_Release(&ids->ends);
        PyBuffer_Release(&ids->blob);
        ids->held = 0;
    }
}

static void cache_release(SegmentCache *cache) {
    if (cache->slots == NULL)
        return;
    for (Py_ssize_t i = 0; i < CACHE_SLOTS; i++)
        segment_ids_release(&cache->slots[i]);
    PyMem_Free(cache->slots);
    cache->slots = NULL;
}

/* Hold segment ``number``'s ids in ``ids``: 0, or -1 with an exception set. */
static int segment_ids_hold(PyObject *segments, int64_t number, SegmentIds *ids) {
    PyObject *key = PyLong_FromLongLong(number);
    if (key == NULL)
        return -1;
    PyObject *segment = PyDict_GetItemWithError(segments, key); /* borrowed */
    if (segment == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, key);
        Py_DECREF(key);
        return -1;
    }
    Py_DECREF(key);
    int ok = -1;
    int blob_held = 0;
    PyObject *blob_o = PyObject_GetAttrString(segment, "id_blob");
    PyObject *ends_o = blob_o ? PyObject_GetAttrString(segment, "id_ends") : NULL;
    if (ends_o == NULL)
        goto out;
    if (PyObject_GetBuffer(blob_o, &ids->blob, PyBUF_SIMPLE) < 0)
        goto out;
    blob_held = 1;
    if (PyObject_GetBuffer(ends_o, &ids->ends, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        goto out;
    const char *format = ids->ends.format ? ids->ends.format : "B";
    if (ids->ends.itemsize != 4 || format[strlen(format) - 1] != 'I') {
        PyErr_SetString(PyExc_TypeError, "probe: a segment's id_ends must be uint32");
        PyBuffer_Release(&ids->ends);
        goto out;
    }
    ids->number = number;
    ids->held = 1;
    ok = 0;
out:
    if (ok < 0 && blob_held)
        PyBuffer_Release(&ids->blob);
    Py_XDECREF(blob_o);
    Py_XDECREF(ends_o);
    return ok;
}

/* Whether the id at ``row`` of a held segment is ``utf8``: 1, 0, or -1 on error. */
static int same_row(const SegmentIds *ids, int64_t row, const char *utf8, Py_ssize_t length) {
    const uint32_t *end_at = ids->ends.buf;
    if (row >= ids->ends.len / 4) {
        PyErr_SetString(PyExc_IndexError, "probe: a handle's row is past its segment");
        return -1;
    }
    uint32_t start = row ? end_at[row - 1] : 0, end = end_at[row];
    if (start > end || end > ids->blob.len) {
        PyErr_SetString(PyExc_ValueError, "probe: a segment's id_ends are out of its blob");
        return -1;
    }
    return (Py_ssize_t)(end - start) == length &&
           memcmp((const char *)ids->blob.buf + start, utf8, (size_t)length) == 0;
}

/* Whether row ``handle & (2**row_bits - 1)`` of segment ``handle >> row_bits`` has the id
 * ``id``, comparing UTF-8 bytes (what the segment's id_at decodes): 1, 0, or -1 on error. */
static int same_in_segment(PyObject *segments, int row_bits, int64_t handle, PyObject *id,
                           SegmentCache *cache) {
    if (!PyUnicode_Check(id))
        return 0; /* a str never equals anything else */
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(id, &length);
    if (utf8 == NULL) { /* lone surrogates: no segment holds such an id */
        PyErr_Clear();
        return 0;
    }
    int64_t number = handle >> row_bits, row = handle & (((int64_t)1 << row_bits) - 1);
    if (cache->slots == NULL) {
        cache->slots = PyMem_Calloc(CACHE_SLOTS, sizeof(SegmentIds));
        if (cache->slots == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    uint64_t at = (uint64_t)number & (CACHE_SLOTS - 1);
    while (cache->slots[at].held) {
        if (cache->slots[at].number == number)
            return same_row(&cache->slots[at], row, utf8, length);
        at = (at + 1) & (CACHE_SLOTS - 1);
    }
    if (cache->used < CACHED) { /* at is an empty slot */
        if (segment_ids_hold(segments, number, &cache->slots[at]) < 0)
            return -1;
        cache->used++;
        return same_row(&cache->slots[at], row, utf8, length);
    }
    SegmentIds once = {0}; /* the cache is full: this segment for this hit only */
    if (segment_ids_hold(segments, number, &once) < 0)
        return -1;
    int same = same_row(&once, row, utf8, length);
    segment_ids_release(&once);
    return same;
}

static PyObject *probe(PyObject *self, PyObject *args) {
    PyObject *keys_o, *handles_o, *hashes_o, *ids, *id_at, *out_h_o, *out_s_o;
    PyObject *segments = NULL;
    int row_bits = 0;
    if (!PyArg_ParseTuple(args, "OOOOOOO|Oi", &keys_o, &handles_o, &hashes_o, &ids, &id_at,
                          &out_h_o, &out_s_o, &segments, &row_bits))
        return NULL;
    if (segments != NULL && segments != Py_None &&
        (!PyDict_Check(segments) || row_bits < 1 || row_bits > 62)) {
        PyErr_SetString(PyExc_TypeError, "probe: segments must be a dict, row_bits 1 to 62");
        return NULL;
    }
    Held keys = {0}, handles = {0}, hashes = {0}, out_h = {0}, out_s = {0};
    SegmentCache cache = {NULL, 0};
    PyObject *seq = NULL, *result = NULL;
    if (hold(keys_o, &keys, 0, 8, "keys") < 0 || hold(handles_o, &handles, 0, 8, "handles") < 0 ||
        hold(hashes_o, &hashes, 0, 8, "hashes") < 0 || hold(out_h_o, &out_h, 1, 8, "out") < 0 ||
        hold(out_s_o, &out_s, 1, 8, "out") < 0)
        goto done;
    seq = PySequence_Fast(ids, "ids must be a sequence");
    if (seq == NULL)
        goto done;
    Py_ssize_t size = keys.view.len / 8, n = hashes.view.len / 8;
    if (!power_of_two(size) || handles.view.len != keys.view.len ||
        PySequence_Fast_GET_SIZE(seq) != n || out_h.view.len / 8 < n || out_s.view.len / 8 < n) {
        PyErr_SetString(PyExc_ValueError, "probe: arrays of mismatched sizes");
        goto done;
    }
    const uint64_t *k = keys.view.buf, *hs = hashes.view.buf;
    const int64_t *hd = handles.view.buf;
    int64_t *oh = out_h.view.buf, *os = out_s.view.buf;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    uint64_t mask = (uint64_t)size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t wanted = hs[i], at = wanted & mask;
        oh[i] = -1;
        os[i] = -1;
        for (Py_ssize_t steps = 0; steps < size; steps++, at = (at + 1) & mask) {
            uint64_t key = k[at];
            if (key == EMPTY)
                break;
            if (key != wanted)
                continue;
            int same = segments != NULL && segments != Py_None
                           ? same_in_segment(segments, row_bits, hd[at], items[i], &cache)
                           : same_by_call(id_at, hd[at], items[i]);
            if (same < 0)
                goto done;
            if (same) {
                oh[i] = hd[at];
                os[i] = (int64_t)at;
                break;
            }
        }
    }
    result = Py_NewRef(Py_None);
done:
    cache_release(&cache);
    Py_XDECREF(seq);
    release(&keys);
    release(&handles);
    release(&hashes);
    release(&out_h);
    release(&out_s);
    return result;
}

static PyObject *insert(PyObject *self, PyObject *args) {
    PyObject *keys_o, *handles_o, *hashes_o, *new_o;
    if (!PyArg_ParseTuple(args, "OOOO", &keys_o, &handles_o, &hashes_o, &new_o))
        return NULL;
    Held keys = {0}, handles = {0}, hashes = {0}, added = {0};
    PyObject *result = NULL;
    if (hold(keys_o, &keys, 1, 8, "keys") < 0 || hold(handles_o, &handles, 1, 8, "handles") < 0 ||
        hold(hashes_o, &hashes, 0, 8, "hashes") < 0 || hold(new_o, &added, 0, 8, "handles") < 0)
        goto done;
    Py_ssize_t size = keys.view.len / 8, n = hashes.view.len / 8;
    if (!power_of_two(size) || handles.view.len != keys.view.len || added.view.len != hashes.view.len) {
        PyErr_SetString(PyExc_ValueError, "insert: arrays of mismatched sizes");
        goto done;
    }
    uint64_t *k = keys.view.buf, mask = (uint64_t)size - 1;
    int64_t *hd = handles.view.buf;
    const uint64_t *hs = hashes.view.buf;
    const int64_t *nh = added.view.buf;
    long long reused = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t at = hs[i] & mask;
        Py_ssize_t steps = 0;
        while (k[at] != EMPTY && k[at] != DELETED) {
            if (++steps >= size) {
                PyErr_SetString(PyExc_RuntimeError, "insert: the index is full (reserve first)");
                goto done;
            }
            at = (at + 1) & mask;
        }
        reused += k[at] == DELETED;
        k[at] = hs[i];
        hd[at] = nh[i];
    }
    result = PyLong_FromLongLong(reused);
done:
    release(&keys);
    release(&handles);
    release(&hashes);
    release(&added);
    return result;
}

static uint32_t murmur2(const unsigned char *data, Py_ssize_t length) {
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t i = 0;
    for (; i + 4 <= length; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 |
                     (uint32_t)data[i + 2] << 16 | (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length & 3) {
    case 3:
        h ^= (uint32_t)data[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[i + 1] << 8;
        /* fall through */
    case 1:
        h ^= data[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static PyObject *partitions(PyObject *self, PyObject *args) {
    PyObject *ids, *out_o;
    long long n_partitions;
    if (!PyArg_ParseTuple(args, "OLO", &ids, &n_partitions, &out_o))
        return NULL;
    if (n_partitions < 1) {
        PyErr_SetString(PyExc_ValueError, "partitions: n_partitions must be at least 1");
        return NULL;
    }
    Held out = {0};
    PyObject *seq = NULL, *result = NULL;
    if (hold(out_o, &out, 1, 8, "out") < 0)
        goto done;
    seq = PySequence_Fast(ids, "ids must be a sequence");
    if (seq == NULL)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (out.view.len / 8 < n) {
        PyErr_SetString(PyExc_ValueError, "partitions: out is too short");
        goto done;
    }
    int64_t *o = out.view.buf;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t length;
        const char *utf8 = PyUnicode_AsUTF8AndSize(items[i], &length);
        if (utf8 == NULL)
            goto done;
        uint32_t h = murmur2((const unsigned char *)utf8, length) & 0x7fffffffu;
        o[i] = (int64_t)(h % (uint64_t)n_partitions);
    }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(seq);
    release(&out);
    return result;
}

static PyObject *partition(PyObject *self, PyObject *args) {
    PyObject *id;
    long long n_partitions;
    if (!PyArg_ParseTuple(args, "UL", &id, &n_partitions))
        return NULL;
    if (n_partitions < 1) {
        PyErr_SetString(PyExc_ValueError, "partition: n_partitions must be at least 1");
        return NULL;
    }
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(id, &length);
    if (utf8 == NULL)
        return NULL;
    uint32_t h = murmur2((const unsigned char *)utf8, length) & 0x7fffffffu;
    return PyLong_FromUnsignedLongLong(h % (uint64_t)n_partitions);
}

static PyMethodDef methods[] = {
    {"probe", probe, METH_VARARGS, "Each id's handle and slot in the index, or -1 and -1."},
    {"insert", insert, METH_VARARGS, "Place absent entries; the deleted slots reused."},
    {"partitions", partitions, METH_VARARGS, "Kafka's default partition of each id."},
    {"partition", partition, METH_VARARGS, "Kafka's default partition of one id."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_id_slots", NULL, -1, methods};

PyMODINIT_FUNC PyInit__id_slots(void) { return PyModule_Create(&module); }
