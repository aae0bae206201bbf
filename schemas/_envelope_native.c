/*
 * A native decoder for the `records` form of one model's batch envelopes (and of label
 * messages, further down).
 *
 * Why: a Faust worker spends ~2 us per 540-byte record just building Python objects for a
 * generic JSON decoder (a dict per record, another per feature map, a float per value) and
 * then reading them back into columns. This decoder writes numeric features, timestamps
 * and scores straight into C buffers, bins numeric features while it parses, and creates
 * Python objects only for what stays an object (prediction ids, categories, predictions;
 * repeated categories share one string).
 *
 * It works in two passes. The first reads the whole envelope with the GIL released, so the
 * worker's consumer thread can fetch and unpack the next messages on the other core
 * meanwhile; it touches no Python object. The second, with the GIL, turns the string and
 * scalar spans the first one noted into Python objects.
 *
 * It is deliberately conservative: it returns None whenever it is not certain, and the
 * caller falls back to the general (msgspec / orjson / pydantic) paths, which either accept
 * the envelope or say exactly what is wrong with it. It declines on: any key it does not
 * expect, a duplicated key, a backslash escape in any string, a string / bool / nested value
 * in a numeric feature, a nested value in a categorical one, an integer literal of more than
 * 18 digits (one beyond 64 bits is invalid, and orjson and msgspec would read it as a
 * float), a timestamp or score that is not a number, a number that overflows a double, and
 * anything that is not JSON. Range checks (timestamps, scores,
 * id lengths, the model id pattern) are left to the Python caller, which owns the contract.
 *
 * decode(raw: bytes, numeric: tuple[bytes, ...], categorical: tuple[bytes, ...],
 *        binners: tuple[tuple[bytes, bytes, float], ...] | None = None,
 *        single: tuple[bytes, bytes] | None = None) ->
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
 *
 * With single = (model id, int64 offsets), the records are single events (one Kafka message
 * each, joined by the caller into one envelope-shaped buffer; offsets: where each message
 * ends in it): each must be exactly its message, carry "model_id" equal to the model id and
 * may carry "model_version". The non-empty versions of a run must be the same bytes, else
 * it is declined: the one version returned then speaks for every event (an empty one leaves
 * the stream's version as it is, as one event at a time would), and checking it checks all.
 *
 * decode_labels(raw: bytes) -> None | (model_id, ids, labels, timestamps)
 * reads a message of the labels topic the same way: a label envelope ({"model_id",
 * "records": [{"prediction_id", "label", "timestamp"}, ...]}) or a single label (those
 * four keys in one object), as the strict parser tells them apart (an envelope has the
 * text "records"); timestamps are bytes of doubles.
 *
 * digit_run(raw: bytes, n: int) -> bool: whether raw holds n ASCII digits in a row, the
 * cheap test for an integer literal beyond 64 bits (every such literal has 19 digits or
 * more) that the Python paths run before looking at values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_NUMBER_CHARS 64
#define MAX_INT_DIGITS 18
#define CACHE_SIZE 64
#define MAX_WALK 8

/* Outcome of a parsing step: OK, DECLINE (return None: not certain), or ERROR (out of
 * memory in the first pass, or a Python exception set in the second). */
enum { OK = 0, DECLINE = 1, ERROR = 2 };

/* A scalar noted by the first pass and made a Python object by the second. */
enum { T_NULL, T_TRUE, T_FALSE, T_STRING, T_INT, T_FLOAT };

typedef struct {
    const char *start; /* T_STRING: the bytes between the quotes */
    Py_ssize_t size;
    long long integer; /* T_INT */
    double number;     /* T_FLOAT */
    int kind;
} Token;

typedef struct {
    const char *p;
    const char *end;
} Cursor;

/* A growable array of fixed-size items, allocated without the GIL (PyMem_Raw*). */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

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
    const char **names; /* numeric names first, then categorical */
    Py_ssize_t *name_sizes;
    Py_ssize_t *seen; /* per feature: the last record that set it */
    Binner *binners;  /* per numeric feature, or NULL: no binning */
    Buffer timestamps, scores, numeric, bins; /* doubles, doubles, doubles, int32 */
    Buffer ids;                               /* Token (strings) */
    Buffer categorical;                       /* Token, row-major: n x n_categorical */
    Buffer predictions;                       /* Token */
    Token model_id, version;
    int has_version;
    Py_ssize_t n;
    PyThreadState *released; /* to take the GIL back for a rare slow number; NULL: held */
    const char *single_model; /* records are single events of this model (NULL: envelope) */
    Py_ssize_t single_model_size;
    const int64_t *single_ends; /* where each event's message ends in the joined buffer */
    Py_ssize_t n_singles;
    const char *base;
    int labels; /* a label envelope (decode_labels): label records, no model_version */
} Decoder;

typedef struct {
    const char *start[CACHE_SIZE];
    Py_ssize_t size[CACHE_SIZE];
    PyObject *value[CACHE_SIZE];
    int used;
} StringCache;

/* Keys and categories are short: an inline loop beats a call to memcmp. */
static inline int same_bytes(const char *a, const char *b, Py_ssize_t size) {
    for (Py_ssize_t i = 0; i < size; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int grow(Buffer *b, Py_ssize_t item, Py_ssize_t more) {
    if (b->len + more <= b->cap)
        return OK;
    Py_ssize_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + more)
        cap *= 2;
    char *data = PyMem_RawRealloc(b->data, (size_t)(cap * item));
    if (data == NULL)
        return ERROR;
    b->data = data;
    b->cap = cap;
    return OK;
}

static int push(Buffer *b, const void *value, Py_ssize_t item) {
    if (grow(b, item, 1) != OK)
        return ERROR;
    memcpy(b->data + b->len * item, value, (size_t)item);
    b->len++;
    return OK;
}

/* -- the first pass: no Python objects, no GIL --------------------------------------- */

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

static int literal(Cursor *c, const char *word, Py_ssize_t size) {
    skip_ws(c);
    if (c->end - c->p >= size && same_bytes(c->p, word, size)) {
        c->p += size;
        return 1;
    }
    return 0;
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

static const double POWERS_OF_TEN[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A JSON number. Clinger's fast path: with at most 15 significant digits the mantissa is
 * an exact double, and so is 10^k for k <= 22; one IEEE division of two exact values is
 * correctly rounded, so this equals the full conversion. Most values qualify (0.1891,
 * 1767225600.25); the rest take Python's own conversion, with the GIL taken back. */
static int read_number(Cursor *c, Decoder *d, double *out, int *is_integer,
                       long long *integer) {
    skip_ws(c);
    const char *s = c->p, *p = c->p, *e = c->end;
    int negative = 0, digits = 0, exponent = 0, int_digits = 0, fast = 1;
    unsigned long long mantissa = 0;
    *is_integer = 1;
    if (p < e && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= e || *p < '0' || *p > '9')
        return DECLINE;
    if (*p == '0' && p + 1 < e && p[1] >= '0' && p[1] <= '9')
        return DECLINE; /* a leading zero */
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        int_digits++;
        if (mantissa || *p != '0')
            digits++;
        if (digits > 15)
            fast = 0;
        else
            mantissa = mantissa * 10 + (unsigned long long)(*p - '0');
    }
    if (p < e && *p == '.') {
        *is_integer = 0;
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return DECLINE;
        for (; p < e && *p >= '0' && *p <= '9'; p++) {
            if (mantissa || *p != '0')
                digits++;
            if (digits > 15)
                fast = 0;
            else
                mantissa = mantissa * 10 + (unsigned long long)(*p - '0');
            exponent--;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_integer = 0;
        fast = 0; /* rare in feature values: take the full conversion */
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return DECLINE;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    Py_ssize_t size = p - s;
    c->p = p;
    if (size > MAX_NUMBER_CHARS)
        return DECLINE;
    if (*is_integer && int_digits > MAX_INT_DIGITS)
        return DECLINE; /* maybe beyond 64 bits: the strict parser names the field */
    if (*is_integer && integer != NULL) {
        long long value = 0;
        for (const char *q = s + negative; q < p; q++)
            value = value * 10 + (*q - '0');
        *integer = negative ? -value : value;
    }
    if (fast && exponent >= -22) {
        double value = (double)mantissa;
        value = exponent < 0 ? value / POWERS_OF_TEN[-exponent] : value;
        *out = negative ? -value : value;
        return OK;
    }
    char buffer[MAX_NUMBER_CHARS + 1];
    memcpy(buffer, s, (size_t)size);
    buffer[size] = '\0';
    if (d->released) /* NULL: the caller kept the GIL (a small message) */
        PyEval_RestoreThread(d->released);
    /* Python's own correctly rounded conversion (no locale); overflow gives +-inf. */
    double value = PyOS_string_to_double(buffer, NULL, NULL);
    int failed = value == -1.0 && PyErr_Occurred();
    if (failed)
        PyErr_Clear();
    if (d->released)
        d->released = PyEval_SaveThread();
    if (failed || !isfinite(value))
        return DECLINE; /* orjson rejects numbers beyond a double, so must we */
    *out = value;
    return OK;
}

static int read_double(Cursor *c, Decoder *d, double *out) {
    int is_integer;
    return read_number(c, d, out, &is_integer, NULL);
}

/* A scalar that stays an object: string, integer, float, true, false (null if allowed). */
static int read_token(Cursor *c, Decoder *d, int allow_null, Token *out) {
    skip_ws(c);
    if (c->p >= c->end)
        return DECLINE;
    char ch = *c->p;
    if (ch == '"') {
        out->kind = T_STRING;
        return read_string(c, &out->start, &out->size);
    }
    if (ch == 't' && literal(c, "true", 4)) {
        out->kind = T_TRUE;
        return OK;
    }
    if (ch == 'f' && literal(c, "false", 5)) {
        out->kind = T_FALSE;
        return OK;
    }
    if (ch == 'n' && literal(c, "null", 4)) {
        out->kind = T_NULL;
        return allow_null ? OK : DECLINE;
    }
    int is_integer;
    int r = read_number(c, d, &out->number, &is_integer, &out->integer);
    out->kind = is_integer ? T_INT : T_FLOAT;
    return r;
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

/* The same answer, found through a uniform grid over [edges[0], edges[n-1]]: table[cell]
 * is where the cell starts, and a short walk finishes. A binary search alone costs ~40 ns
 * per value on unordered data (each step waits for the previous load); the grid makes it
 * a few. The walks make the result exact whatever the rounding of the cell, and a walk
 * that runs long (edges crowded in one cell) hands over to the binary search. */
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

static int read_features(Cursor *c, Decoder *d, Py_ssize_t row) {
    Py_ssize_t n_num = d->n_numeric, n_cat = d->n_categorical;
    if (!expect(c, '{'))
        return DECLINE;
    if (grow(&d->numeric, sizeof(double), n_num) != OK ||
        grow(&d->categorical, sizeof(Token), n_cat) != OK ||
        (d->binners && grow(&d->bins, sizeof(int32_t), n_num) != OK))
        return ERROR;
    double *numeric = (double *)d->numeric.data + row * n_num;
    Token *tokens = (Token *)d->categorical.data + row * n_cat;
    int32_t *bins = d->binners ? (int32_t *)d->bins.data + row * n_num : NULL;
    for (Py_ssize_t i = 0; i < n_num; i++) {
        numeric[i] = NAN;
        if (bins)
            bins[i] = -1;
    }
    for (Py_ssize_t j = 0; j < n_cat; j++)
        tokens[j].kind = T_NULL;
    d->numeric.len += n_num;
    d->categorical.len += n_cat;
    if (bins)
        d->bins.len += n_num;
    if (expect(c, '}'))
        return OK;
    int r;
    Py_ssize_t hint = 0;
    do {
        const char *key;
        Py_ssize_t size;
        if ((r = read_string(c, &key, &size)) != OK)
            return r;
        Py_ssize_t i = find_feature(d, key, size, hint);
        if (i < 0 || d->seen[i] == row || !expect(c, ':'))
            return DECLINE;
        d->seen[i] = row;
        hint = i + 1;
        if (i < n_num) {
            if (literal(c, "null", 4))
                continue;
            if ((r = read_double(c, d, &numeric[i])) != OK)
                return r;
            if (bins)
                bins[i] = bin_of(&d->binners[i], numeric[i]);
        } else if ((r = read_token(c, d, 1, &tokens[i - n_num])) != OK) {
            return r;
        }
    } while (expect(c, ','));
    return expect(c, '}') ? OK : DECLINE;
}

enum {
    HAS_ID = 1,
    HAS_TIME = 2,
    HAS_FEATURES = 4,
    HAS_PREDICTION = 8,
    HAS_SCORE = 16,
    HAS_MODEL = 32,
    HAS_VERSION = 64,
};

static int key_is(const char *s, Py_ssize_t size, const char *word, Py_ssize_t word_size) {
    return size == word_size && same_bytes(s, word, size);
}

#define KEY_IS(s, size, word) key_is(s, size, word, (Py_ssize_t)sizeof(word) - 1)

/* An object member's key and the colon after it. */
static int read_key(Cursor *c, const char **key, Py_ssize_t *size) {
    int r = read_string(c, key, size);
    if (r != OK)
        return r;
    return expect(c, ':') ? OK : DECLINE;
}

/* The members prediction records and labels share, prediction_id and timestamp, noted in
 * ids and timestamps: OK once read, DECLINE or ERROR as reading them goes, and OTHER_KEY
 * (nothing read) for any other key, or one of them a second time. */
enum { OTHER_KEY = 3 };
static inline int read_id_or_time(Cursor *c, Decoder *d, const char *key, Py_ssize_t size,
                                  int *seen) {
    int r;
    if (KEY_IS(key, size, "prediction_id") && !(*seen & HAS_ID)) {
        *seen |= HAS_ID;
        Token id = {.kind = T_STRING};
        if ((r = read_string(c, &id.start, &id.size)) != OK)
            return r;
        return push(&d->ids, &id, sizeof(Token));
    }
    if (KEY_IS(key, size, "timestamp") && !(*seen & HAS_TIME)) {
        *seen |= HAS_TIME;
        double value;
        if ((r = read_double(c, d, &value)) != OK)
            return r;
        return push(&d->timestamps, &value, sizeof(double));
    }
    return OTHER_KEY;
}

static int read_record(Cursor *c, Decoder *d, Py_ssize_t row) {
    int seen = 0, r;
    if (!expect(c, '{') || peek(c, '}'))
        return DECLINE;
    do {
        const char *key;
        Py_ssize_t size;
        if ((r = read_key(c, &key, &size)) != OK)
            return r;
        if ((r = read_id_or_time(c, d, key, size, &seen)) != OTHER_KEY) {
            if (r != OK)
                return r;
        } else if (KEY_IS(key, size, "features") && !(seen & HAS_FEATURES)) {
            seen |= HAS_FEATURES;
            if ((r = read_features(c, d, row)) != OK)
                return r;
        } else if (KEY_IS(key, size, "prediction") && !(seen & HAS_PREDICTION)) {
            seen |= HAS_PREDICTION;
            Token value;
            if ((r = read_token(c, d, 0, &value)) != OK)
                return r;
            if (push(&d->predictions, &value, sizeof(Token)) != OK)
                return ERROR;
        } else if (KEY_IS(key, size, "score") && !(seen & HAS_SCORE)) {
            seen |= HAS_SCORE;
            double value = NAN;
            if (!literal(c, "null", 4) && (r = read_double(c, d, &value)) != OK)
                return r;
            if (push(&d->scores, &value, sizeof(double)) != OK)
                return ERROR;
        } else if (d->single_model && KEY_IS(key, size, "model_id") && !(seen & HAS_MODEL)) {
            seen |= HAS_MODEL;
            const char *s;
            Py_ssize_t n;
            if ((r = read_string(c, &s, &n)) != OK)
                return r;
            if (n != d->single_model_size || !same_bytes(s, d->single_model, n))
                return DECLINE; /* another model's event: the general path */
        } else if (d->single_model && KEY_IS(key, size, "model_version") &&
                   !(seen & HAS_VERSION)) {
            seen |= HAS_VERSION;
            Token version;
            if ((r = read_string(c, &version.start, &version.size)) != OK)
                return r;
            if (version.size && d->has_version &&
                (version.size != d->version.size ||
                 !same_bytes(version.start, d->version.start, version.size)))
                return DECLINE; /* versions differ within the run: one at a time */
            if (version.size) {
                d->version = version;
                d->has_version = 1;
            }
        } else {
            return DECLINE; /* an unknown or repeated key */
        }
    } while (expect(c, ','));
    if (!expect(c, '}'))
        return DECLINE;
    int required = HAS_ID | HAS_TIME | HAS_FEATURES | HAS_PREDICTION;
    if (d->single_model)
        required |= HAS_MODEL;
    if ((seen & required) != required)
        return DECLINE;
    if (!(seen & HAS_SCORE)) {
        double none = NAN;
        return push(&d->scores, &none, sizeof(double));
    }
    return OK;
}

static int read_records(Cursor *c, Decoder *d) {
    int r;
    if (!expect(c, '[') || peek(c, ']'))
        return DECLINE; /* an empty envelope breaks the contract */
    Py_ssize_t row = 0;
    do {
        if ((r = read_record(c, d, row)) != OK)
            return r;
        if (d->single_model) {
            /* Each event must be exactly one message: a message holding two objects, or
             * one cut short and finished by the next, is the general path's to reject. */
            skip_ws(c);
            if (row >= d->n_singles || c->p - d->base != d->single_ends[row])
                return DECLINE;
        }
        row++;
    } while (expect(c, ','));
    if (d->single_model && row != d->n_singles)
        return DECLINE;
    if (!expect(c, ']'))
        return DECLINE;
    d->n = row;
    return OK;
}

static int read_label_records(Cursor *c, Decoder *d); /* further down, with the labels */

/* {"model_id", "model_version" (not for labels), "records"}, and nothing else. */
static int read_envelope(Cursor *c, Decoder *d) {
    int seen = 0, r;
    if (!expect(c, '{') || peek(c, '}'))
        return DECLINE;
    do {
        const char *key;
        Py_ssize_t size;
        if ((r = read_key(c, &key, &size)) != OK)
            return r;
        if (KEY_IS(key, size, "model_id") && !(seen & 1)) {
            seen |= 1;
            if ((r = read_string(c, &d->model_id.start, &d->model_id.size)) != OK)
                return r;
        } else if (KEY_IS(key, size, "model_version") && !(seen & 2) && !d->single_model &&
                   !d->labels) {
            seen |= 2;
            d->has_version = 1;
            if ((r = read_string(c, &d->version.start, &d->version.size)) != OK)
                return r;
        } else if (KEY_IS(key, size, "records") && !(seen & 4)) {
            seen |= 4;
            if ((r = d->labels ? read_label_records(c, d) : read_records(c, d)) != OK)
                return r;
        } else {
            return DECLINE;
        }
    } while (expect(c, ','));
    if (!expect(c, '}'))
        return DECLINE;
    skip_ws(c);
    return c->p == c->end && (seen & 5) == 5 ? OK : DECLINE;
}

/* -- labels: the same reading, for the labels topic's two forms ----------------------- */

enum { HAS_LABEL = 128 };

/* One label object: prediction_id, label (a scalar, not null) and timestamp, noted in ids,
 * predictions (the labels) and timestamps; with_model: a single label's message, which
 * names its model too (noted as the decoder's model id). */
static int read_label(Cursor *c, Decoder *d, int with_model) {
    int seen = 0, r;
    if (!expect(c, '{') || peek(c, '}'))
        return DECLINE;
    do {
        const char *key;
        Py_ssize_t size;
        if ((r = read_key(c, &key, &size)) != OK)
            return r;
        if ((r = read_id_or_time(c, d, key, size, &seen)) != OTHER_KEY) {
            if (r != OK)
                return r;
        } else if (KEY_IS(key, size, "label") && !(seen & HAS_LABEL)) {
            seen |= HAS_LABEL;
            Token value;
            if ((r = read_token(c, d, 0, &value)) != OK)
                return r;
            if (push(&d->predictions, &value, sizeof(Token)) != OK)
                return ERROR;
        } else if (with_model && KEY_IS(key, size, "model_id") && !(seen & HAS_MODEL)) {
            seen |= HAS_MODEL;
            Token model = {.kind = T_STRING};
            if ((r = read_string(c, &model.start, &model.size)) != OK)
                return r;
            d->model_id = model;
        } else {
            return DECLINE; /* an unknown or repeated key */
        }
    } while (expect(c, ','));
    if (!expect(c, '}'))
        return DECLINE;
    int required = HAS_ID | HAS_LABEL | HAS_TIME | (with_model ? HAS_MODEL : 0);
    return (seen & required) == required ? OK : DECLINE;
}

static int read_label_records(Cursor *c, Decoder *d) {
    int r;
    if (!expect(c, '[') || peek(c, ']'))
        return DECLINE;
    Py_ssize_t row = 0;
    do {
        if ((r = read_label(c, d, 0)) != OK)
            return r;
        row++;
    } while (expect(c, ','));
    if (!expect(c, ']'))
        return DECLINE;
    d->n = row;
    return OK;
}

/* A single label's message: one label object naming its model, and nothing after it. */
static int read_single_label(Cursor *c, Decoder *d) {
    int r = read_label(c, d, 1);
    if (r != OK)
        return r;
    skip_ws(c);
    d->n = 1;
    return c->p == c->end ? OK : DECLINE;
}

static int mentions(const char *s, Py_ssize_t size, const char *word, Py_ssize_t word_size) {
    for (Py_ssize_t i = 0; i + word_size <= size; i++)
        if (s[i] == word[0] && same_bytes(s + i, word, word_size))
            return 1;
    return 0;
}

/* -- the second pass: Python objects, with the GIL ----------------------------------- */

/* NULL with DECLINE: the bytes are not UTF-8 (exception cleared); NULL with ERROR: set. */
static PyObject *utf8(const char *s, Py_ssize_t size, int *r) {
    PyObject *value = PyUnicode_DecodeUTF8(s, size, "strict");
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            *r = DECLINE;
        } else {
            *r = ERROR;
        }
    }
    return value;
}

static PyObject *cached_string(StringCache *cache, const char *s, Py_ssize_t size, int *r) {
    for (int i = 0; i < cache->used; i++) {
        if (cache->size[i] == size && same_bytes(cache->start[i], s, size)) {
            Py_INCREF(cache->value[i]);
            return cache->value[i];
        }
    }
    PyObject *value = utf8(s, size, r);
    if (value != NULL && cache->used < CACHE_SIZE) {
        cache->start[cache->used] = s;
        cache->size[cache->used] = size;
        cache->value[cache->used++] = Py_NewRef(value);
    }
    return value;
}

static PyObject *token_object(const Token *t, StringCache *cache, int *r) {
    PyObject *value = NULL;
    switch (t->kind) {
    case T_NULL:
        return Py_NewRef(Py_None);
    case T_TRUE:
        return Py_NewRef(Py_True);
    case T_FALSE:
        return Py_NewRef(Py_False);
    case T_STRING:
        return cached_string(cache, t->start, t->size, r);
    case T_INT:
        value = PyLong_FromLongLong(t->integer);
        break;
    default:
        value = PyFloat_FromDouble(t->number);
    }
    if (value == NULL)
        *r = ERROR;
    return value;
}

static void release_cache(StringCache *cache) {
    for (int i = 0; i < cache->used; i++)
        Py_DECREF(cache->value[i]);
    cache->used = 0;
}

/* A list of n objects from tokens[k * stride], sharing repeated strings. */
static PyObject *token_list(const Token *tokens, Py_ssize_t n, Py_ssize_t stride, int cached,
                            int *r) {
    StringCache cache = {.used = 0};
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        *r = ERROR;
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        const Token *t = &tokens[k * stride];
        PyObject *value = cached || t->kind != T_STRING ? token_object(t, &cache, r)
                                                         : utf8(t->start, t->size, r);
        if (value == NULL) {
            Py_DECREF(list);
            release_cache(&cache);
            return NULL;
        }
        PyList_SET_ITEM(list, k, value);
    }
    release_cache(&cache);
    return list;
}

static PyObject *buffer_bytes(const Buffer *b, Py_ssize_t item) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len * item);
}

static PyObject *build_result(Decoder *d, int *r) {
    PyObject *model_id = NULL, *version = NULL, *ids = NULL, *categorical = NULL;
    PyObject *predictions = NULL, *times = NULL, *numeric = NULL, *scores = NULL;
    PyObject *bins = NULL, *result = NULL;
    Py_ssize_t n = d->n;
    if (d->ids.len != n || d->timestamps.len != n || d->predictions.len != n ||
        d->scores.len != n) {
        *r = DECLINE; /* cannot happen for a record that passed; kept as a guard */
        return NULL;
    }
    if (!(model_id = utf8(d->model_id.start, d->model_id.size, r)))
        goto done;
    version = d->has_version ? utf8(d->version.start, d->version.size, r)
                             : PyUnicode_FromStringAndSize("", 0);
    if (version == NULL) {
        if (*r != DECLINE)
            *r = ERROR;
        goto done;
    }
    if (!(ids = token_list((Token *)d->ids.data, n, 1, 0, r)))
        goto done;
    if (!(predictions = token_list((Token *)d->predictions.data, n, 1, 1, r)))
        goto done;
    if (!(categorical = PyList_New(d->n_categorical))) {
        *r = ERROR;
        goto done;
    }
    for (Py_ssize_t j = 0; j < d->n_categorical; j++) {
        PyObject *column =
            token_list((Token *)d->categorical.data + j, n, d->n_categorical, 1, r);
        if (column == NULL)
            goto done;
        PyList_SET_ITEM(categorical, j, column);
    }
    times = buffer_bytes(&d->timestamps, sizeof(double));
    numeric = buffer_bytes(&d->numeric, sizeof(double));
    scores = buffer_bytes(&d->scores, sizeof(double));
    bins = d->binners ? buffer_bytes(&d->bins, sizeof(int32_t)) : Py_NewRef(Py_None);
    if (times && numeric && scores && bins)
        result = Py_BuildValue("(OOnOOOOOOO)", model_id, version, n, ids, times, numeric,
                               categorical, predictions, scores, bins);
    *r = result == NULL ? ERROR : OK;
done:
    Py_XDECREF(model_id);
    Py_XDECREF(version);
    Py_XDECREF(ids);
    Py_XDECREF(predictions);
    Py_XDECREF(categorical);
    Py_XDECREF(times);
    Py_XDECREF(numeric);
    Py_XDECREF(scores);
    Py_XDECREF(bins);
    return result;
}

/* -- the module -------------------------------------------------------------------------- */

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

static int binners_of(PyObject *tuple, Decoder *d) {
    if (PyTuple_GET_SIZE(tuple) != d->n_numeric) {
        PyErr_SetString(PyExc_ValueError, "one binner per numeric feature is needed");
        return ERROR;
    }
    d->binners = PyMem_RawCalloc((size_t)d->n_numeric + 1, sizeof(Binner));
    if (d->binners == NULL) {
        PyErr_NoMemory();
        return ERROR;
    }
    for (Py_ssize_t i = 0; i < d->n_numeric; i++) {
        PyObject *edges, *table;
        double scale;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(tuple, i), "O!O!d", &PyBytes_Type, &edges,
                              &PyBytes_Type, &table, &scale))
            return ERROR;
        if (PyBytes_GET_SIZE(edges) % sizeof(double) || PyBytes_GET_SIZE(table) % sizeof(int32_t)) {
            PyErr_SetString(PyExc_ValueError, "binner: float64 edges, int32 table");
            return ERROR;
        }
        Binner *b = &d->binners[i];
        b->edges = (const double *)PyBytes_AS_STRING(edges);
        b->n = PyBytes_GET_SIZE(edges) / (Py_ssize_t)sizeof(double);
        b->table = (const int32_t *)PyBytes_AS_STRING(table);
        b->cells = PyBytes_GET_SIZE(table) / (Py_ssize_t)sizeof(int32_t);
        b->scale = scale;
        for (Py_ssize_t k = 0; k < b->cells; k++) {
            if (b->table[k] < 0 || b->table[k] > b->n) {
                PyErr_SetString(PyExc_ValueError, "binner: table entries beyond the edges");
                return ERROR;
            }
        }
    }
    return OK;
}

static void free_decoder(Decoder *d) {
    PyMem_RawFree(d->names);
    PyMem_RawFree(d->name_sizes);
    PyMem_RawFree(d->seen);
    PyMem_RawFree(d->binners);
    Buffer *buffers[] = {&d->timestamps, &d->scores,      &d->numeric,    &d->bins,
                         &d->ids,        &d->categorical, &d->predictions};
    for (size_t i = 0; i < sizeof(buffers) / sizeof(buffers[0]); i++)
        PyMem_RawFree(buffers[i]->data);
}

static PyObject *decode(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer raw;
    PyObject *numeric_names, *categorical_names, *binners = Py_None, *single = Py_None;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*O!O!|OO", &raw, &PyTuple_Type, &numeric_names, &PyTuple_Type,
                          &categorical_names, &binners, &single))
        return NULL;
    Decoder d;
    memset(&d, 0, sizeof(d));
    PyObject *model = NULL, *ends = NULL;
    if ((binners != Py_None && !PyTuple_Check(binners)) ||
        (single != Py_None &&
         !(PyTuple_Check(single) && PyTuple_GET_SIZE(single) == 2 &&
           PyBytes_Check(model = PyTuple_GET_ITEM(single, 0)) &&
           PyBytes_Check(ends = PyTuple_GET_ITEM(single, 1)) &&
           PyBytes_GET_SIZE(ends) % sizeof(int64_t) == 0))) {
        PyBuffer_Release(&raw);
        PyErr_SetString(PyExc_TypeError,
                        "binners: a tuple or None; single: (model id, int64 ends) or None");
        return NULL;
    }
    if (single != Py_None) {
        d.single_model = PyBytes_AS_STRING(model);
        d.single_model_size = PyBytes_GET_SIZE(model);
        d.single_ends = (const int64_t *)PyBytes_AS_STRING(ends);
        d.n_singles = PyBytes_GET_SIZE(ends) / (Py_ssize_t)sizeof(int64_t);
    }
    d.base = (const char *)raw.buf;
    d.n_numeric = PyTuple_GET_SIZE(numeric_names);
    d.n_categorical = PyTuple_GET_SIZE(categorical_names);
    Py_ssize_t n_features = d.n_numeric + d.n_categorical;
    int r = ERROR;
    d.names = PyMem_RawCalloc((size_t)n_features + 1, sizeof(char *));
    d.name_sizes = PyMem_RawCalloc((size_t)n_features + 1, sizeof(Py_ssize_t));
    d.seen = PyMem_RawMalloc(((size_t)n_features + 1) * sizeof(Py_ssize_t));
    if (!d.names || !d.name_sizes || !d.seen) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_features; i++)
        d.seen[i] = -1;
    if (names_of(numeric_names, d.names, d.name_sizes) != OK ||
        names_of(categorical_names, d.names + d.n_numeric, d.name_sizes + d.n_numeric) != OK)
        goto done;
    if (binners != Py_None && binners_of(binners, &d) != OK)
        goto done;

    Cursor c = {(const char *)raw.buf, (const char *)raw.buf + raw.len};
    /* The bytes object, the names and the binner buffers stay alive (the caller holds
     * them), and the first pass allocates with PyMem_Raw*: it needs no GIL. */
    d.released = PyEval_SaveThread();
    r = read_envelope(&c, &d);
    PyEval_RestoreThread(d.released);
    if (r == ERROR) {
        PyErr_NoMemory();
        goto done;
    }
    if (r == OK)
        result = build_result(&d, &r);
done:
    PyBuffer_Release(&raw);
    free_decoder(&d);
    if (r == ERROR)
        return NULL;
    if (r == DECLINE) {
        Py_XDECREF(result);
        Py_RETURN_NONE;
    }
    return result;
}

/* Messages of the labels topic are small, one label or an envelope of a few hundred:
 * releasing the GIL for them costs more than it frees, unless they are this large. */
#define RELEASE_GIL_ABOVE (64 * 1024)

static PyObject *build_labels(Decoder *d, int *r) {
    PyObject *model_id = NULL, *ids = NULL, *labels = NULL, *times = NULL, *result = NULL;
    Py_ssize_t n = d->n;
    if (d->ids.len != n || d->predictions.len != n || d->timestamps.len != n) {
        *r = DECLINE; /* cannot happen for labels that passed; kept as a guard */
        return NULL;
    }
    if (!(model_id = utf8(d->model_id.start, d->model_id.size, r)))
        goto done;
    if (!(ids = token_list((Token *)d->ids.data, n, 1, 0, r)))
        goto done;
    if (!(labels = token_list((Token *)d->predictions.data, n, 1, 1, r)))
        goto done;
    if ((times = buffer_bytes(&d->timestamps, sizeof(double))))
        result = PyTuple_Pack(4, model_id, ids, labels, times);
    *r = result == NULL ? ERROR : OK;
done:
    Py_XDECREF(model_id);
    Py_XDECREF(ids);
    Py_XDECREF(labels);
    Py_XDECREF(times);
    return result;
}

/* What a label decoder returns for the first pass's answer ``r``: the columns, None (it
 * declines), or NULL with an exception; frees the decoder. The buffers read stay valid
 * until it returns. */
static PyObject *labels_result(Decoder *d, int r) {
    PyObject *result = NULL;
    if (r == ERROR)
        PyErr_NoMemory();
    else if (r == OK)
        result = build_labels(d, &r);
    free_decoder(d);
    if (r == ERROR)
        return NULL;
    if (r == DECLINE) {
        Py_XDECREF(result);
        Py_RETURN_NONE;
    }
    return result;
}

static PyObject *decode_labels(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer raw;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*", &raw))
        return NULL;
    Decoder d;
    memset(&d, 0, sizeof(d));
    const char *s = (const char *)raw.buf;
    Cursor c = {s, s + raw.len};
    /* The strict parser's rule: an envelope is a message with "records" in it. */
    int envelope = mentions(s, raw.len, "\"records\"", 9);
    if (raw.len > RELEASE_GIL_ABOVE)
        d.released = PyEval_SaveThread();
    d.labels = 1;
    int r = envelope ? read_envelope(&c, &d) : read_single_label(&c, &d);
    if (d.released)
        PyEval_RestoreThread(d.released);
    result = labels_result(&d, r);
    PyBuffer_Release(&raw);
    return result;
}

/* Consecutive single-label messages (a list of bytes), each read as read_single_label
 * reads it, all naming the same model: one set of columns, as if they were one envelope.
 * Declines when any message would not be certified alone, is an envelope, or names
 * another model, so the caller's per-message path gives each message its own answer. */
static PyObject *decode_label_run(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "decode_label_run(values: list[bytes])");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(arg);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(PyList_GET_ITEM(arg, i))) {
            PyErr_SetString(PyExc_TypeError, "decode_label_run(values: list[bytes])");
            return NULL;
        }
        total += PyBytes_GET_SIZE(PyList_GET_ITEM(arg, i));
    }
    if (n == 0)
        Py_RETURN_NONE;
    Decoder d;
    memset(&d, 0, sizeof(d));
    d.labels = 1;
    Token model = {.kind = T_STRING};
    int r = OK;
    /* The caller's own list holds its bytes objects, and bytes do not move: their buffers
     * stay valid without the GIL, which the reading below does not need (a long run only:
     * taking the GIL back can wait for another thread's switch interval). */
    if (total > RELEASE_GIL_ABOVE)
        d.released = PyEval_SaveThread();
    for (Py_ssize_t i = 0; i < n && r == OK; i++) {
        PyObject *item = PyList_GET_ITEM(arg, i);
        const char *s = PyBytes_AS_STRING(item);
        Py_ssize_t size = PyBytes_GET_SIZE(item);
        if (mentions(s, size, "\"records\"", 9)) {
            r = DECLINE; /* an envelope, by the strict parser's rule */
            break;
        }
        Cursor c = {s, s + size};
        r = read_label(&c, &d, 1);
        if (r != OK)
            break;
        skip_ws(&c);
        if (c.p != c.end)
            r = DECLINE;
        else if (i == 0)
            model = d.model_id;
        else if (d.model_id.size != model.size ||
                 !same_bytes(d.model_id.start, model.start, model.size))
            r = DECLINE; /* another model: its own run */
    }
    if (d.released)
        PyEval_RestoreThread(d.released);
    d.n = n;
    d.model_id = model;
    return labels_result(&d, r);
}

/* Probes every n-th byte: a run of n digits covers one of them, and a probe that lands on a
 * digit walks back only over the short runs of ordinary numbers (about ten times fewer
 * reads than looking at every byte of an envelope). */
static int has_digit_run(const unsigned char *p, Py_ssize_t size, Py_ssize_t n) {
    if (n <= 0)
        return 1;
    Py_ssize_t start = 0; /* no run of n ends before start + n - 1 */
    while (start + n <= size) {
        Py_ssize_t j = start + n - 1, k = j;
        while (k >= start && (unsigned)(p[k] - '0') < 10u)
            k--;
        if (k < start)
            return 1; /* p[start .. j] are all digits */
        start = k + 1;
    }
    return 0;
}

static PyObject *digit_run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "digit_run(raw: bytes, n: int)");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    return PyBool_FromLong(has_digit_run(p, PyBytes_GET_SIZE(args[0]), n));
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(raw, numeric_names, categorical_names[, binners[, single]]): the columns, "
     "or None."},
    {"decode_labels", decode_labels, METH_VARARGS,
     "decode_labels(raw): (model_id, ids, labels, timestamps), or None."},
    {"decode_label_run", decode_label_run, METH_O,
     "decode_label_run(values): consecutive single labels of one model as "
     "(model_id, ids, labels, timestamps), or None."},
    {"digit_run", (PyCFunction)(void (*)(void))digit_run, METH_FASTCALL,
     "digit_run(raw, n): whether raw holds n ASCII digits in a row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_envelope_native",
    "Native decoder of one model's batch envelopes (see schemas/typed_envelope.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__envelope_native(void) { return PyModule_Create(&module); }
