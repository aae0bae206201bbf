/*
 * A native reader of Kafka record batches (message format v2) into columns.
 *
 * Why: aiokafka turns every fetched record into a record object and then a ConsumerRecord
 * (~2-3 us a record, in the consumer thread, holding the GIL), and stage 1 then turns each
 * into an input message. For single-event messages at 100,000/s that is most of a core.
 * This reader walks a partition's fetched bytes once, with the GIL released, and writes one
 * row of six int64 per record: offset, timestamp, key start, key length, value start,
 * value length (starts are positions in the fetched bytes; a length of -1 is a null).
 *
 * Like the envelope decoder it is conservative: it returns None whenever the answer is not
 * plainly what aiokafka's own reader would give, and the caller then lets aiokafka read the
 * fetch (which also raises the errors). It declines on: a batch of another message format,
 * a compressed batch, a control or transactional batch, a CRC that does not match (when
 * asked to check), and anything malformed. A trailing partial batch ends the read, as in
 * aiokafka (the next fetch starts at it); records below the fetch offset are skipped, as in
 * aiokafka.
 *
 * read(data: bytes, fetch_offset: int, check_crcs: bool) ->
 *     None | (rows: bytes, n: int, next_fetch_offset: int, timestamp_type: int)
 * where rows holds n * 6 native int64 values, row-major, and timestamp_type is the last
 * batch's (0: create time, 1: log-append time).
 *
 * gather(data: bytes, rows: bytes, head: bytes, tail: bytes) -> None | bytes: head, the
 * rows' values joined by commas, then tail (None when a value is null).
 *
 * crc32c(data: bytes) -> int: the checksum Kafka's batches carry (for the tests).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HEADER_SIZE 61 /* a v2 batch's header, up to and including the record count */
#define LOG_OVERHEAD 12 /* base offset and batch length */
#define ROW 6

static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t n) {
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_HW_CRC 1
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
                                                             size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c;
    while (n--)
        crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#endif

static int use_hw_crc = 0;

static uint32_t crc32c(const unsigned char *p, size_t n) {
#ifdef HAVE_HW_CRC
    if (use_hw_crc)
        return ~crc32c_hw(0xFFFFFFFFu, p, n);
#endif
    return ~crc32c_table(0xFFFFFFFFu, p, n);
}

static int64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

static int32_t be32(const unsigned char *p) {
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                     (uint32_t)p[3]);
}

/* A zigzag varint of at most max_bytes bytes (5 for Kafka's varint, 10 for its varlong). */
static int varint(const unsigned char **p, const unsigned char *end, int max_bytes, int64_t *out) {
    uint64_t result = 0;
    for (int i = 0; i < max_bytes && *p < end; i++) {
        unsigned char b = *(*p)++;
        result |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)(result >> 1) ^ -(int64_t)(result & 1);
            return 1;
        }
    }
    return 0;
}

/* A length-prefixed field: its start and length (-1: null) if it fits, else 0. */
static int field(const unsigned char **p, const unsigned char *end, const unsigned char *base,
                 int64_t *start, int64_t *length) {
    if (!varint(p, end, 5, length) || *length < -1 || *length > end - *p)
        return 0;
    *start = *length < 0 ? 0 : (int64_t)(*p - base);
    if (*length > 0)
        *p += *length;
    return 1;
}

typedef struct {
    const unsigned char *data;
    Py_ssize_t size;
    int check_crcs;
    int64_t *rows;
    Py_ssize_t capacity;
    Py_ssize_t n;
    int64_t next_fetch_offset;
    int timestamp_type;
} Reader;

/* The upper bound of records: the sum of the complete batches' record counts; -1: decline. */
static Py_ssize_t count_records(const unsigned char *data, Py_ssize_t size) {
    Py_ssize_t pos = 0, total = 0;
    while (size - pos >= LOG_OVERHEAD) {
        int32_t length = be32(data + pos + 8);
        if (length < HEADER_SIZE - LOG_OVERHEAD)
            return -1;
        if ((Py_ssize_t)length > size - pos - LOG_OVERHEAD)
            break; /* a partial batch at the end: the next fetch starts at it */
        int32_t count = be32(data + pos + 57);
        if (count < 0 || count > length)
            return -1;
        total += count;
        pos += LOG_OVERHEAD + length;
    }
    return total;
}

/* The records of every complete batch into rows; 0 when any batch must be declined. */
static int read_batches(Reader *r) {
    const unsigned char *data = r->data;
    Py_ssize_t pos = 0;
    while (r->size - pos >= LOG_OVERHEAD) {
        const unsigned char *b = data + pos;
        int32_t length = be32(b + 8);
        if ((Py_ssize_t)length > r->size - pos - LOG_OVERHEAD)
            break;
        const unsigned char *end = b + LOG_OVERHEAD + length;
        if (b[16] != 2)
            return 0;
        int attributes = (int)((uint32_t)b[21] << 8 | b[22]);
        if (attributes & 0x07 || attributes & 0x10 || attributes & 0x20)
            return 0; /* compressed, transactional, control: aiokafka's reader decides */
        if (r->check_crcs && crc32c(b + 21, (size_t)(end - (b + 21))) != (uint32_t)be32(b + 17))
            return 0;
        int64_t base_offset = be64(b);
        int32_t last_offset_delta = be32(b + 23);
        int64_t first_timestamp = be64(b + 27), max_timestamp = be64(b + 35);
        int32_t count = be32(b + 57);
        int log_append = (attributes >> 3) & 1;
        const unsigned char *p = b + HEADER_SIZE;
        for (int32_t i = 0; i < count; i++) {
            int64_t record_length, timestamp_delta, offset_delta, header_count;
            if (!varint(&p, end, 5, &record_length) || record_length < 0 ||
                record_length > end - p)
                return 0;
            const unsigned char *record_end = p + record_length;
            int64_t key_start, key_length, value_start, value_length;
            if (record_end - p < 1)
                return 0;
            p++; /* the record's attributes: unused in v2 */
            if (!varint(&p, record_end, 10, &timestamp_delta) ||
                !varint(&p, record_end, 5, &offset_delta) ||
                !field(&p, record_end, data, &key_start, &key_length) ||
                !field(&p, record_end, data, &value_start, &value_length) ||
                !varint(&p, record_end, 5, &header_count) || header_count < 0)
                return 0;
            for (int64_t h = 0; h < header_count; h++) {
                int64_t header_start, header_key_length, header_value_length;
                if (!field(&p, record_end, data, &header_start, &header_key_length) ||
                    header_key_length < 0 ||
                    !field(&p, record_end, data, &header_start, &header_value_length))
                    return 0;
            }
            if (p != record_end)
                return 0;
            int64_t offset = base_offset + offset_delta;
            if (offset < r->next_fetch_offset)
                continue; /* before the position asked for (or repeated): aiokafka skips it */
            if (r->n >= r->capacity)
                return 0;
            int64_t *row = r->rows + r->n * ROW;
            row[0] = offset;
            row[1] = log_append ? max_timestamp : first_timestamp + timestamp_delta;
            row[2] = key_start;
            row[3] = key_length;
            row[4] = value_start;
            row[5] = value_length;
            r->n++;
            r->next_fetch_offset = offset + 1;
        }
        if (p != end)
            return 0;
        r->next_fetch_offset = base_offset + last_offset_delta + 1;
        r->timestamp_type = log_append;
        pos += LOG_OVERHEAD + length;
    }
    return 1;
}

static PyObject *read_py(PyObject *self, PyObject *args) {
    PyObject *data;
    long long fetch_offset;
    int check_crcs;
    if (!PyArg_ParseTuple(args, "SLp", &data, &fetch_offset, &check_crcs))
        return NULL;
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                check_crcs, NULL, 0, 0, fetch_offset, 0};
    Py_ssize_t capacity = count_records(r.data, r.size);
    if (capacity < 0)
        Py_RETURN_NONE;
    PyObject *rows = PyBytes_FromStringAndSize(NULL, capacity * ROW * (Py_ssize_t)sizeof(int64_t));
    if (rows == NULL)
        return NULL;
    r.rows = (int64_t *)PyBytes_AS_STRING(rows);
    r.capacity = capacity;
    int ok;
    /* The bytes are immutable and referenced by the caller: safe to read without the GIL. */
    Py_BEGIN_ALLOW_THREADS
    ok = read_batches(&r);
    Py_END_ALLOW_THREADS
    if (!ok) {
        Py_DECREF(rows);
        Py_RETURN_NONE;
    }
    if (r.n < capacity &&
        _PyBytes_Resize(&rows, r.n * ROW * (Py_ssize_t)sizeof(int64_t)) < 0)
        return NULL;
    return Py_BuildValue("(NnLi)", rows, r.n, (long long)r.next_fetch_offset, r.timestamp_type);
}

static PyObject *gather(PyObject *self, PyObject *args) {
    PyObject *data, *rows_object, *head, *tail;
    if (!PyArg_ParseTuple(args, "SSSS", &data, &rows_object, &head, &tail))
        return NULL;
    const int64_t *rows = (const int64_t *)PyBytes_AS_STRING(rows_object);
    Py_ssize_t n = PyBytes_GET_SIZE(rows_object) / (Py_ssize_t)(ROW * sizeof(int64_t));
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    Py_ssize_t total = PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(tail) + (n > 0 ? n - 1 : 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t start = rows[i * ROW + 4], length = rows[i * ROW + 5];
        if (length < 0)
            Py_RETURN_NONE;
        if (start < 0 || start > size || length > size - start) {
            PyErr_SetString(PyExc_ValueError, "a row's value lies outside the data");
            return NULL;
        }
        total += (Py_ssize_t)length;
    }
    PyObject *joined = PyBytes_FromStringAndSize(NULL, total);
    if (joined == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(joined);
    const char *in = PyBytes_AS_STRING(data);
    memcpy(out, PyBytes_AS_STRING(head), (size_t)PyBytes_GET_SIZE(head));
    out += PyBytes_GET_SIZE(head);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0)
            *out++ = ',';
        memcpy(out, in + rows[i * ROW + 4], (size_t)rows[i * ROW + 5]);
        out += rows[i * ROW + 5];
    }
    memcpy(out, PyBytes_AS_STRING(tail), (size_t)PyBytes_GET_SIZE(tail));
    return joined;
}

static PyObject *crc32c_py(PyObject *self, PyObject *args) {
    PyObject *data;
    if (!PyArg_ParseTuple(args, "S", &data))
        return NULL;
    return PyLong_FromUnsignedLong(
        crc32c((const unsigned char *)PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data)));
}

static PyMethodDef methods[] = {
    {"read", read_py, METH_VARARGS,
     "read(data, fetch_offset, check_crcs): (rows, n, next_fetch_offset, timestamp_type), "
     "or None."},
    {"gather", gather, METH_VARARGS,
     "gather(data, rows, head, tail): head, the values joined by commas, tail; or None."},
    {"crc32c", crc32c_py, METH_VARARGS, "crc32c(data): Kafka's batch checksum."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_record_batches",
    "Native reader of Kafka record batches into columns (see stream_app/record_columns.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__record_batches(void) {
    crc_init();
#ifdef HAVE_HW_CRC
    __builtin_cpu_init();
    use_hw_crc = __builtin_cpu_supports("sse4.2");
#endif
    return PyModule_Create(&module);
}
