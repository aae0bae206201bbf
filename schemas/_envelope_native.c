/*
 * A native decoder for the `records` form of one model's batch envelopes.
 *
 * Why: a Faust worker spends ~2 us per 540-byte record just building Python objects for a
 * generic JSON decoder (a dict per record, another per feature map, a float per value) and
 * then reading them back into columns. This decoder writes numeric features, timestamps
 * and scores straight into C double buffers and creates Python objects only for what stays
 * an object (prediction ids, categories, predictions; repeated categories are shared).
 *
 * It is deliberately conservative: it returns None whenever it is not certain, and the
 * caller falls back to the general (msgspec / orjson / pydantic) paths, which either accept
 * the envelope or say exactly what is wrong with it. It declines on: any key it does not
 * expect, a duplicated key, a backslash escape in any string, a string / bool / nested value
 * in a numeric feature, a nested value in a categorical one, an integer literal of more than
 * 18 digits where an object is built, a timestamp or score that is not a number, a number
 * that overflows a double, and anything that is not JSON. Range checks (timestamps, scores,
 * id lengths, the model id pattern) are left to the Python caller, which owns the contract.
 *
 * decode(raw: bytes, numeric: tuple[bytes, ...], categorical: tuple[bytes, ...],
 *        binners: tuple[tuple[bytes, bytes, float], ...] = None) ->
 *     None | (model_id, model_version, n, ids, timestamps, numeric_rows, categorical,
 *             predictions, scores, bins)
 * where timestamps and scores are bytes of n doubles (NaN: score absent or null),
 * numeric_rows is bytes of n * len(numeric) doubles, row-major (NaN: missing),
 * categorical is a list of one list per categorical feature (None: missing), and bins,
 * when binners are given (per numeric feature: sorted float64 edges, an int32 grid table,
 * the grid's cells per unit; see typed_envelope.py), is bytes of n * len(numeric) int32
 * values, row-major: np.searchsorted(edges, value, side="left"), -1 where missing.
 * Binning here saves a second pass in numpy, whose branching search is ~4x slower on
 * unordered values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_NUMBER_CHARS 64
#define MAX_INT_DIGITS 18
#define CACHE_SIZE 64

typedef struct {
    const char *p;
    const char *end;
} Cursor;

typedef struct {
    double *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Doubles;

typedef struct {
    const char *start[CACHE_SIZE];
    Py_ssize_t size[CACHE_SIZE];
    PyObject *value[CACHE_SIZE];
    int used;
} StringCache;

typedef struct {
    const double *edges;
    Py_ssize_t n;
    const int32_t *table; /* per grid cell: np.searchsorted(edges, cell start) */
    Py_ssize_t cells;
    double scale; /* cells per unit of value */
} Binner;

typedef struct {
    Py_ssize_t n_numeric;
    Py_ssize_t n_categorical;
    const char **names;      /* numeric names first, then categorical */
    Py_ssize_t *name_sizes;
    Py_ssize_t *seen;        /* per feature: the last record that set it */
    Doubles timestamps;
    Doubles scores;
    Doubles numeric;         /* row-major */
    int32_t *bins;           /* row-major, like numeric; -1 where a value is missing */
    Py_ssize_t bins_cap;
    Binner *binners;         /* per numeric feature, or NULL: no binning */
    PyObject *ids;
    PyObject *predictions;
    PyObject *categorical;   /* list of lists */
    StringCache *caches;     /* one per categorical feature, then one for predictions */
} Decoder;

/* Outcome of a parsing step: OK, DECLINE (return None: not certain), or ERROR (a Python
 * exception is set, e.g. MemoryError). */
enum { OK = 0, DECLINE = 1, ERROR = 2 };

/* Keys and categories are short: an inline loop beats a call to memcmp. */
static inline int same_bytes(const char *a, const char *b, Py_ssize_t size) {
    for (Py_ssize_t i = 0; i < size; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int expect(Cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int peek(Cursor *c, char ch) {
    skip_ws(c);
    return c->p < c->end && *c->p == ch;
}

/* A string without escapes: its bytes between the quotes. */
static int read_string(Cursor *c, const char **start, Py_ssize_t *size) {
    if (!expect(c, '"'))
        return DECLINE;
    const char *s = c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            *start = s;
            *size = c->p - s;
            c->p++;
            return OK;
        }
        if (ch == '\\' || ch < 0x20)
            return DECLINE;
        c->p++;
    }
    return DECLINE;
}

/* A JSON number literal; *is_integer when it has no fraction or exponent. */
static int read_number_span(Cursor *c, const char **start, Py_ssize_t *size, int *is_integer) {
    skip_ws(c);
    const char *s = c->p, *p = c->p, *e = c->end;
    *is_integer = 1;
    if (p < e && *p == '-')
        p++;
    if (p >= e)
        return DECLINE;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        return DECLINE;
    }
    if (p < e && *p == '.') {
        *is_integer = 0;
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return DECLINE;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_integer = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return DECLINE;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p - s > MAX_NUMBER_CHARS)
        return DECLINE;
    *start = s;
    *size = p - s;
    c->p = p;
    return OK;
}

static const double POWERS_OF_TEN[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Clinger's fast path: with at most 15 significant digits the mantissa is an exact double,
 * and so is 10^k for k <= 22; one IEEE multiplication or division of two exact values is
 * correctly rounded, so this equals the full conversion. Most feature values qualify
 * (e.g. 0.1891, 1767225600.25); the rest take Python's own conversion. */
static int fast_span_to_double(const char *s, Py_ssize_t size, double *out) {
    const char *p = s, *e = s + size;
    int negative = 0, digits = 0, exponent = 0;
    unsigned long long mantissa = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        if (mantissa || *p != '0')
            digits++;
        mantissa = mantissa * 10 + (unsigned long long)(*p - '0');
        if (digits > 15)
            return 0;
    }
    if (p < e && *p == '.') {
        for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
            if (mantissa || *p != '0')
                digits++;
            mantissa = mantissa * 10 + (unsigned long long)(*p - '0');
            exponent--;
            if (digits > 15)
                return 0;
        }
    }
    if (p < e) { /* an exponent part: rare in feature values; take the full conversion */
        return 0;
    }
    if (exponent < -22)
        return 0;
    double value = (double)mantissa;
    value = exponent < 0 ? value / POWERS_OF_TEN[-exponent] : value;
    *out = negative ? -value : value;
    return 1;
}

static int span_to_double(const char *s, Py_ssize_t size, double *out) {
    if (fast_span_to_double(s, size, out))
        return OK;
    char buffer[MAX_NUMBER_CHARS + 1];
    memcpy(buffer, s, (size_t)size);
    buffer[size] = '\0';
    /* Python's own correctly rounded conversion (no locale); overflow gives +-inf. */
    double value = PyOS_string_to_double(buffer, NULL, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return DECLINE;
    }
    if (!isfinite(value))
        return DECLINE; /* orjson rejects numbers beyond a double, so must we */
    *out = value;
    return OK;
}

static int read_double(Cursor *c, double *out) {
    const char *s;
    Py_ssize_t size;
    int is_integer;
    int r = read_number_span(c, &s, &size, &is_integer);
    if (r != OK)
        return r;
    return span_to_double(s, size, out);
}

static int literal(Cursor *c, const char *word) {
    size_t n = strlen(word);
    skip_ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

static int push_double(Doubles *d, double value) {
    if (d->len == d->cap) {
        Py_ssize_t cap = d->cap ? d->cap * 2 : 1024;
        double *data = PyMem_Realloc(d->data, (size_t)cap * sizeof(double));
        if (data == NULL) {
            PyErr_NoMemory();
            return ERROR;
        }
        d->data = data;
        d->cap = cap;
    }
    d->data[d->len++] = value;
    return OK;
}

static PyObject *cached_string(StringCache *cache, const char *s, Py_ssize_t size) {
    for (int i = 0; i < cache->used; i++) {
        /* Length and first byte first: most misses end there without a memcmp call. */
        if (cache->size[i] == size && same_bytes(cache->start[i], s, size)) {
            Py_INCREF(cache->value[i]);
            return cache->value[i];
        }
    }
    PyObject *value = PyUnicode_DecodeUTF8(s, size, "strict");
    if (value == NULL)
        return NULL;
    if (cache->used < CACHE_SIZE) {
        cache->start[cache->used] = s;
        cache->size[cache->used] = size;
        Py_INCREF(value);
        cache->value[cache->used++] = value;
    }
    return value;
}

/* A scalar that stays a Python object: string, integer, float, true, false (null if
 * allow_null). *out is a new reference. */
static int read_scalar(Cursor *c, StringCache *cache, int allow_null, PyObject **out) {
    skip_ws(c);
    if (c->p >= c->end)
        return DECLINE;
    char ch = *c->p;
    if (ch == '"') {
        const char *s;
        Py_ssize_t size;
        int r = read_string(c, &s, &size);
        if (r != OK)
            return r;
        *out = cached_string(cache, s, size);
        if (*out == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                return DECLINE;
            }
            return ERROR;
        }
        return OK;
    }
    if (literal(c, "true")) {
        *out = Py_NewRef(Py_True);
        return OK;
    }
    if (literal(c, "false")) {
        *out = Py_NewRef(Py_False);
        return OK;
    }
    if (literal(c, "null")) {
        if (!allow_null)
            return DECLINE;
        *out = Py_NewRef(Py_None);
        return OK;
    }
    const char *s;
    Py_ssize_t size;
    int is_integer;
    int r = read_number_span(c, &s, &size, &is_integer);
    if (r != OK)
        return r;
    if (is_integer) {
        Py_ssize_t digits = size - (s[0] == '-');
        if (digits > MAX_INT_DIGITS)
            return DECLINE; /* orjson may read it as a float: leave it to the general path */
        char buffer[MAX_NUMBER_CHARS + 1];
        memcpy(buffer, s, (size_t)size);
        buffer[size] = '\0';
        *out = PyLong_FromLongLong(strtoll(buffer, NULL, 10));
        return *out == NULL ? ERROR : OK;
    }
    double value;
    r = span_to_double(s, size, &value);
    if (r != OK)
        return r;
    *out = PyFloat_FromDouble(value);
    return *out == NULL ? ERROR : OK;
}

static int append_new(PyObject *list, PyObject *item) {
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed ? ERROR : OK;
}

static Py_ssize_t find_feature(Decoder *d, const char *s, Py_ssize_t size, Py_ssize_t hint) {
    Py_ssize_t n = d->n_numeric + d->n_categorical;
    /* Producers repeat one key order: try the slot after the previous key first. */
    Py_ssize_t i = hint < n ? hint : 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (d->name_sizes[i] == size && same_bytes(d->names[i], s, size))
            return i;
        if (++i == n)
            i = 0;
    }
    return -1;
}

/* np.searchsorted(edges, value, side="left") over edges[lo:hi]: how many edges are below
 * the value. Branch-free (a conditional move per step). */
static Py_ssize_t lower_bound(const double *edges, Py_ssize_t lo, Py_ssize_t hi, double value) {
    Py_ssize_t n = hi - lo;
    if (n <= 0)
        return lo;
    const double *base = edges + lo;
    while (n > 1) {
        Py_ssize_t half = n / 2;
        base = base[half - 1] < value ? base + half : base;
        n -= half;
    }
    return (base - edges) + (*base < value);
}

#define MAX_WALK 8

/* The same answer, found through a uniform grid over [edges[0], edges[n-1]]: table[cell]
 * is where the cell starts, and a short walk finishes. A binary search alone costs ~40 ns
 * per value on unordered data (each step waits for the previous load); the grid makes it
 * ~5. The walks make the result exact whatever the rounding of the cell, and a walk that
 * runs long (edges crowded in one cell) hands over to the binary search. */
static int32_t bin_of(const Binner *b, double value) {
    const double *edges = b->edges;
    Py_ssize_t n = b->n;
    if (n == 0 || !(value > edges[0]))
        return 0;
    if (value > edges[n - 1])
        return (int32_t)n;
    double x = (value - edges[0]) * b->scale;
    Py_ssize_t cell = x >= (double)b->cells ? b->cells - 1 : (x > 0 ? (Py_ssize_t)x : 0);
    Py_ssize_t i = b->cells ? b->table[cell] : 0;
    for (int steps = 0; i > 0 && edges[i - 1] >= value; i--)
        if (++steps == MAX_WALK)
            return (int32_t)lower_bound(edges, 0, i, value);
    for (int steps = 0; i < n && edges[i] < value; i++)
        if (++steps == MAX_WALK)
            return (int32_t)lower_bound(edges, i, n, value);
    return (int32_t)i;
}

static int reserve_bins(Decoder *d, Py_ssize_t rows) {
    Py_ssize_t needed = rows * d->n_numeric;
    if (needed <= d->bins_cap)
        return OK;
    Py_ssize_t cap = d->bins_cap ? d->bins_cap * 2 : 1024 * d->n_numeric;
    while (cap < needed)
        cap *= 2;
    int32_t *bins = PyMem_Realloc(d->bins, (size_t)cap * sizeof(int32_t));
    if (bins == NULL) {
        PyErr_NoMemory();
        return ERROR;
    }
    d->bins = bins;
    d->bins_cap = cap;
    return OK;
}

static int read_features(Cursor *c, Decoder *d, Py_ssize_t row) {
    PyObject **values = NULL;
    if (!expect(c, '{'))
        return DECLINE;
    for (Py_ssize_t i = 0; i < d->n_numeric; i++) {
        int r = push_double(&d->numeric, NAN);
        if (r != OK)
            return r;
    }
    double *numeric = d->numeric.data + row * d->n_numeric;
    int32_t *bins = NULL;
    if (d->binners != NULL && d->n_numeric) {
        int r0 = reserve_bins(d, row + 1);
        if (r0 != OK)
            return r0;
        bins = d->bins + row * d->n_numeric;
        for (Py_ssize_t i = 0; i < d->n_numeric; i++)
            bins[i] = -1;
    }
    if (d->n_categorical) {
        values = PyMem_Calloc((size_t)d->n_categorical, sizeof(PyObject *));
        if (values == NULL) {
            PyErr_NoMemory();
            return ERROR;
        }
    }
    int r = OK;
    Py_ssize_t hint = 0;
    if (!expect(c, '}')) {
        do {
            const char *key;
            Py_ssize_t size;
            if ((r = read_string(c, &key, &size)) != OK)
                goto done;
            Py_ssize_t i = find_feature(d, key, size, hint);
            if (i < 0 || d->seen[i] == row || !expect(c, ':')) {
                r = DECLINE;
                goto done;
            }
            d->seen[i] = row;
            hint = i + 1;
            if (i < d->n_numeric) {
                if (literal(c, "null"))
                    continue;
                if ((r = read_double(c, &numeric[i])) != OK)
                    goto done;
                if (bins != NULL)
                    bins[i] = bin_of(&d->binners[i], numeric[i]);
            } else {
                Py_ssize_t j = i - d->n_numeric;
                if ((r = read_scalar(c, &d->caches[j], 1, &values[j])) != OK)
                    goto done;
            }
        } while (expect(c, ','));
        if (!expect(c, '}')) {
            r = DECLINE;
            goto done;
        }
    }
    for (Py_ssize_t j = 0; j < d->n_categorical; j++) {
        PyObject *value = values[j] ? values[j] : Py_NewRef(Py_None);
        values[j] = NULL;
        if ((r = append_new(PyList_GET_ITEM(d->categorical, j), value)) != OK)
            goto done;
    }
done:
    if (values != NULL) {
        for (Py_ssize_t j = 0; j < d->n_categorical; j++)
            Py_XDECREF(values[j]);
        PyMem_Free(values);
    }
    return r;
}

enum { HAS_ID = 1, HAS_TIME = 2, HAS_FEATURES = 4, HAS_PREDICTION = 8, HAS_SCORE = 16 };

static int key_is(const char *s, Py_ssize_t size, const char *word) {
    return (size_t)size == strlen(word) && same_bytes(s, word, size);
}

static int read_record(Cursor *c, Decoder *d, Py_ssize_t row) {
    int seen = 0, r;
    if (!expect(c, '{'))
        return DECLINE;
    if (peek(c, '}'))
        return DECLINE;
    do {
        const char *key;
        Py_ssize_t size;
        if ((r = read_string(c, &key, &size)) != OK)
            return r;
        if (!expect(c, ':'))
            return DECLINE;
        if (key_is(key, size, "prediction_id") && !(seen & HAS_ID)) {
            seen |= HAS_ID;
            const char *s;
            Py_ssize_t n;
            if ((r = read_string(c, &s, &n)) != OK)
                return r;
            PyObject *id = PyUnicode_DecodeUTF8(s, n, "strict");
            if (id == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                    return ERROR;
                PyErr_Clear();
                return DECLINE;
            }
            if ((r = append_new(d->ids, id)) != OK)
                return r;
        } else if (key_is(key, size, "timestamp") && !(seen & HAS_TIME)) {
            seen |= HAS_TIME;
            double value;
            if ((r = read_double(c, &value)) != OK || (r = push_double(&d->timestamps, value)) != OK)
                return r;
        } else if (key_is(key, size, "features") && !(seen & HAS_FEATURES)) {
            seen |= HAS_FEATURES;
            if ((r = read_features(c, d, row)) != OK)
                return r;
        } else if (key_is(key, size, "prediction") && !(seen & HAS_PREDICTION)) {
            seen |= HAS_PREDICTION;
            PyObject *value;
            if ((r = read_scalar(c, &d->caches[d->n_categorical], 0, &value)) != OK)
                return r;
            if ((r = append_new(d->predictions, value)) != OK)
                return r;
        } else if (key_is(key, size, "score") && !(seen & HAS_SCORE)) {
            seen |= HAS_SCORE;
            double value = NAN;
            if (!literal(c, "null") && (r = read_double(c, &value)) != OK)
                return r;
            if ((r = push_double(&d->scores, value)) != OK)
                return r;
        } else {
            return DECLINE; /* an unknown or repeated key */
        }
    } while (expect(c, ','));
    if (!expect(c, '}'))
        return DECLINE;
    if ((seen & (HAS_ID | HAS_TIME | HAS_FEATURES | HAS_PREDICTION)) !=
        (HAS_ID | HAS_TIME | HAS_FEATURES | HAS_PREDICTION))
        return DECLINE;
    if (!(seen & HAS_SCORE))
        return push_double(&d->scores, NAN);
    return OK;
}

static int read_records(Cursor *c, Decoder *d, Py_ssize_t *n) {
    int r;
    if (!expect(c, '['))
        return DECLINE;
    if (peek(c, ']'))
        return DECLINE; /* an empty envelope breaks the contract */
    Py_ssize_t row = 0;
    do {
        if ((r = read_record(c, d, row)) != OK)
            return r;
        row++;
    } while (expect(c, ','));
    if (!expect(c, ']'))
        return DECLINE;
    *n = row;
    return OK;
}

static PyObject *doubles_bytes(Doubles *d) {
    return PyBytes_FromStringAndSize((const char *)d->data, d->len * (Py_ssize_t)sizeof(double));
}

static int names_of(PyObject *tuple, const char **names, Py_ssize_t *sizes) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *name = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "feature names must be bytes");
            return ERROR;
        }
        names[i] = PyBytes_AS_STRING(name);
        sizes[i] = PyBytes_GET_SIZE(name);
    }
    return OK;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer raw;
    PyObject *numeric_names, *categorical_names, *edges = NULL;
    if (!PyArg_ParseTuple(args, "y*O!O!|O!", &raw, &PyTuple_Type, &numeric_names, &PyTuple_Type,
                          &categorical_names, &PyTuple_Type, &edges))
        return NULL;
    Decoder d;
    memset(&d, 0, sizeof(d));
    d.n_numeric = PyTuple_GET_SIZE(numeric_names);
    d.n_categorical = PyTuple_GET_SIZE(categorical_names);
    Py_ssize_t n_features = d.n_numeric + d.n_categorical;
    PyObject *result = NULL, *model_id = NULL, *version = NULL;
    int r = ERROR;
    d.names = PyMem_Calloc((size_t)n_features + 1, sizeof(char *));
    d.name_sizes = PyMem_Calloc((size_t)n_features + 1, sizeof(Py_ssize_t));
    d.seen = PyMem_Malloc(((size_t)n_features + 1) * sizeof(Py_ssize_t));
    d.caches = PyMem_Calloc((size_t)d.n_categorical + 1, sizeof(StringCache));
    d.ids = PyList_New(0);
    d.predictions = PyList_New(0);
    d.categorical = PyList_New(d.n_categorical);
    if (!d.names || !d.name_sizes || !d.seen || !d.caches) {
        PyErr_NoMemory();
        goto done;
    }
    if (!d.ids || !d.predictions || !d.categorical)
        goto done;
    for (Py_ssize_t j = 0; j < d.n_categorical; j++) {
        PyObject *column = PyList_New(0);
        if (column == NULL)
            goto done;
        PyList_SET_ITEM(d.categorical, j, column);
    }
    for (Py_ssize_t i = 0; i < n_features; i++)
        d.seen[i] = -1;
    if (edges != NULL) {
        if (PyTuple_GET_SIZE(edges) != d.n_numeric) {
            PyErr_SetString(PyExc_ValueError, "one binner per numeric feature is needed");
            goto done;
        }
        d.binners = PyMem_Calloc((size_t)d.n_numeric + 1, sizeof(Binner));
        if (!d.binners) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < d.n_numeric; i++) {
            PyObject *item = PyTuple_GET_ITEM(edges, i);
            PyObject *e, *table;
            double scale;
            if (!PyArg_ParseTuple(item, "O!O!d", &PyBytes_Type, &e, &PyBytes_Type, &table,
                                  &scale))
                goto done;
            if (PyBytes_GET_SIZE(e) % sizeof(double) || PyBytes_GET_SIZE(table) % sizeof(int32_t)) {
                PyErr_SetString(PyExc_ValueError, "binner: float64 edges, int32 table");
                goto done;
            }
            Binner *b = &d.binners[i];
            b->edges = (const double *)PyBytes_AS_STRING(e);
            b->n = PyBytes_GET_SIZE(e) / (Py_ssize_t)sizeof(double);
            b->table = (const int32_t *)PyBytes_AS_STRING(table);
            b->cells = PyBytes_GET_SIZE(table) / (Py_ssize_t)sizeof(int32_t);
            b->scale = scale;
            for (Py_ssize_t c = 0; c < b->cells; c++) {
                if (b->table[c] < 0 || b->table[c] > b->n) {
                    PyErr_SetString(PyExc_ValueError, "binner: table entries beyond the edges");
                    goto done;
                }
            }
        }
    }
    if (names_of(numeric_names, d.names, d.name_sizes) != OK ||
        names_of(categorical_names, d.names + d.n_numeric, d.name_sizes + d.n_numeric) != OK)
        goto done;

    Cursor c = {(const char *)raw.buf, (const char *)raw.buf + raw.len};
    int seen = 0;
    Py_ssize_t n = 0;
    r = DECLINE;
    if (!expect(&c, '{') || peek(&c, '}'))
        goto done;
    do {
        const char *key;
        Py_ssize_t size;
        if ((r = read_string(&c, &key, &size)) != OK)
            goto done;
        r = DECLINE;
        if (!expect(&c, ':'))
            goto done;
        if (key_is(key, size, "model_id") && !(seen & 1)) {
            seen |= 1;
            const char *s;
            Py_ssize_t m;
            if ((r = read_string(&c, &s, &m)) != OK)
                goto done;
            model_id = PyUnicode_DecodeUTF8(s, m, "strict");
        } else if (key_is(key, size, "model_version") && !(seen & 2)) {
            seen |= 2;
            const char *s;
            Py_ssize_t m;
            if ((r = read_string(&c, &s, &m)) != OK)
                goto done;
            version = PyUnicode_DecodeUTF8(s, m, "strict");
        } else if (key_is(key, size, "records") && !(seen & 4)) {
            seen |= 4;
            if ((r = read_records(&c, &d, &n)) != OK)
                goto done;
            continue;
        } else {
            goto done;
        }
        if ((seen & 1 && model_id == NULL) || (seen & 2 && version == NULL)) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                r = ERROR;
                goto done;
            }
            PyErr_Clear();
            goto done;
        }
    } while (expect(&c, ','));
    r = DECLINE;
    if (!expect(&c, '}'))
        goto done;
    skip_ws(&c);
    if (c.p != c.end || (seen & 5) != 5)
        goto done;
    if (version == NULL && (version = PyUnicode_FromString("")) == NULL) {
        r = ERROR;
        goto done;
    }
    PyObject *times = doubles_bytes(&d.timestamps);
    PyObject *numeric = doubles_bytes(&d.numeric);
    PyObject *scores = doubles_bytes(&d.scores);
    PyObject *bins = d.binners != NULL && d.bins != NULL
                         ? PyBytes_FromStringAndSize((const char *)d.bins,
                                                     n * d.n_numeric * (Py_ssize_t)sizeof(int32_t))
                         : Py_NewRef(Py_None);
    if (times && numeric && scores && bins)
        result = Py_BuildValue("(OOnOOOOOOO)", model_id, version, n, d.ids, times, numeric,
                               d.categorical, d.predictions, scores, bins);
    Py_XDECREF(bins);
    Py_XDECREF(times);
    Py_XDECREF(numeric);
    Py_XDECREF(scores);
    r = result == NULL ? ERROR : OK;
done:
    PyBuffer_Release(&raw);
    if (d.caches != NULL) {
        for (Py_ssize_t j = 0; j <= d.n_categorical; j++)
            for (int i = 0; i < d.caches[j].used; i++)
                Py_DECREF(d.caches[j].value[i]);
    }
    PyMem_Free(d.names);
    PyMem_Free(d.name_sizes);
    PyMem_Free(d.seen);
    PyMem_Free(d.caches);
    PyMem_Free(d.timestamps.data);
    PyMem_Free(d.scores.data);
    PyMem_Free(d.numeric.data);
    PyMem_Free(d.bins);
    PyMem_Free(d.binners);
    Py_XDECREF(d.ids);
    Py_XDECREF(d.predictions);
    Py_XDECREF(d.categorical);
    Py_XDECREF(model_id);
    Py_XDECREF(version);
    if (r == ERROR)
        return NULL;
    if (r == DECLINE)
        Py_RETURN_NONE;
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(raw, numeric_names, categorical_names): the envelope's columns, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_envelope_native",
    "Native decoder of one model's batch envelopes (see schemas/typed_envelope.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__envelope_native(void) { return PyModule_Create(&module); }
