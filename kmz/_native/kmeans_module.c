/* kmz._kmeans: the quantizer's kernels (histogram.c, kmeans.c) for quantize.py.
 *
 * Argument checks and buffer handling only. Points and centres have 3 or 4 columns
 * (dims), taken from the points' shape; every other (x, dims) array must agree. Every array comes from the driver,
 * which allocates outputs; the kernels run with the GIL released and stop on Ctrl-C.
 */
#include "module.h"

#include "histogram.h"
#include "kmeans.h"

#define I64 "lq"
#define F64 "d"
#define F32 "f"
#define U32 "I"
#define I32 "i"
#define U8 "B"

typedef struct {
    const char *name, *formats;
    int ndim, writable;
} spec;

/* Buffers for the positional arguments, one spec each; returns the count got (all
 * of them, or -1 with a Python error set and nothing held). */
static int get_buffers(PyObject *args, const spec *specs, int count, Py_buffer *views) {
    if (PyTuple_GET_SIZE(args) != count) {
        PyErr_Format(PyExc_TypeError, "expected %d arguments, got %zd", count, PyTuple_GET_SIZE(args));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (kmz_buffer(PyTuple_GET_ITEM(args, i), &views[i], specs[i].name, specs[i].formats,
                       specs[i].ndim, specs[i].writable) < 0) {
            while (i-- > 0)
                PyBuffer_Release(&views[i]);
            return -1;
        }
    }
    return count;
}

static void release(Py_buffer *views, int count) {
    for (int i = 0; i < count; i++)
        PyBuffer_Release(&views[i]);
}

#define ROWS(view) ((view).shape[0])
#define COLS(view) ((view).ndim > 1 ? (view).shape[1] : 1)

/* Fails (with a ValueError naming the argument) unless the condition holds. */
#define REQUIRE(condition, what) \
    do { \
        if (!(condition)) { \
            PyErr_SetString(PyExc_ValueError, what); \
            goto fail; \
        } \
    } while (0)

static PyObject *count_keys(PyObject *self, PyObject *args) {
    static const spec specs[] = {{"values", U32, 1, 0}, {"number", U32, 1, 1}, {"keys", U32, 1, 1},
                                 {"counts", U32, 1, 1}};
    Py_buffer v[4];
    if (get_buffers(args, specs, 4, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), distinct = 0;
    REQUIRE(n < INT32_MAX, "values: fewer than 2^31");
    REQUIRE(ROWS(v[1]) == n && ROWS(v[2]) == n && ROWS(v[3]) == n, "number, keys, counts: n entries each");
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    distinct = kmz_count_keys(v[0].buf, n, v[1].buf, v[2].buf, v[3].buf, &poll);
    KMZ_ACQUIRE(released);
    release(v, 4);
    return kmz_status(distinct < 0 ? (int)distinct : KMZ_OK) < 0 ? NULL : PyLong_FromLongLong(distinct);
fail:
    release(v, 4);
    return NULL;
}

static PyObject *count_pixels(PyObject *self, PyObject *args) {
    static const spec specs[] = {{"pixels", U8, 2, 0}, {"number", U32, 1, 1}, {"keys", U32, 1, 1},
                                 {"counts", U32, 1, 1}};
    Py_buffer v[4];
    if (get_buffers(args, specs, 4, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), distinct = 0;
    REQUIRE((COLS(v[0]) == 3 || COLS(v[0]) == 4) && n < INT32_MAX, "pixels must be (n, 3) or (n, 4), n < 2^31");
    REQUIRE(ROWS(v[1]) == n && ROWS(v[2]) == n && ROWS(v[3]) == n, "number, keys, counts: n entries each");
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    distinct = kmz_count_pixels(v[0].buf, (int)COLS(v[0]), n, v[1].buf, v[2].buf, v[3].buf, &poll);
    KMZ_ACQUIRE(released);
    release(v, 4);
    return kmz_status(distinct < 0 ? (int)distinct : KMZ_OK) < 0 ? NULL : PyLong_FromLongLong(distinct);
fail:
    release(v, 4);
    return NULL;
}

typedef int seeder(const float *, int, const double *, int64_t, int64_t, const double *, int64_t, int64_t *,
                   int64_t *, kmz_poll *);

/* The arguments of both seeding kernels, which take the same ones. */
static PyObject *seed_with(seeder *kernel, PyObject *args) {
    static const spec specs[] = {{"points", F32, 2, 0}, {"weights", F64, 1, 0}, {"draws", F64, 2, 0},
                                 {"chosen", I64, 1, 1}, {"labels", I64, 1, 1}};
    Py_buffer v[5];
    if (get_buffers(args, specs, 5, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), k = ROWS(v[2]);
    int status, dims = (int)COLS(v[0]);
    REQUIRE(n > 0 && (dims == 3 || dims == 4) && ROWS(v[1]) == n && ROWS(v[4]) == n,
            "points (n, 3 or 4), weights and labels (n)");
    REQUIRE(k >= 1 && k <= n && COLS(v[2]) >= 1 && ROWS(v[3]) == k, "draws (k, trials), chosen (k), 1 <= k <= n");
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    status = kernel(v[0].buf, dims, v[1].buf, n, k, v[2].buf, COLS(v[2]), v[3].buf, v[4].buf, &poll);
    KMZ_ACQUIRE(released);
    release(v, 5);
    if (kmz_status(status) < 0)
        return NULL;
    Py_RETURN_NONE;
fail:
    release(v, 5);
    return NULL;
}

static PyObject *seed(PyObject *self, PyObject *args) {
    return seed_with(kmz_seed, args);
}

static PyObject *seed_runs(PyObject *self, PyObject *args) {
    return seed_with(kmz_seed_runs, args);
}

/* The neighbour table arguments (ranked, order, drift) for k centres. */
static int table_ok(Py_buffer *ranked, Py_buffer *order, Py_buffer *drift, int64_t k) {
    int64_t m = COLS(*ranked);
    if (ROWS(*drift) != k || ROWS(*order) != ROWS(*ranked) || COLS(*order) != m
        || !((ROWS(*ranked) == 0 && m == 0) || (ROWS(*ranked) == k && m >= 1 && m <= k))) {
        PyErr_SetString(PyExc_ValueError, "ranked, order: (k, m) or (0, 0); drift: (k)");
        return 0;
    }
    return 1;
}

static PyObject *assign(PyObject *self, PyObject *args) {
    static const spec specs[] = {
        {"points", F32, 2, 0}, {"weights", F64, 1, 0}, {"centres", F64, 2, 0}, {"guesses", I64, 1, 0},
        {"floors", F64, 1, 0}, {"ranked", F64, 2, 0}, {"order", I32, 2, 0}, {"drift", F64, 1, 0},
        {"labels", I64, 1, 1}, {"upper", F64, 1, 1}, {"lower", F64, 1, 1}, {"sums", F64, 2, 1},
        {"mass", F64, 1, 1}};
    Py_buffer v[13];
    if (get_buffers(args, specs, 13, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), k = ROWS(v[2]);
    int status, dims = (int)COLS(v[0]);
    REQUIRE((dims == 3 || dims == 4) && ROWS(v[1]) == n && ROWS(v[3]) == n && ROWS(v[4]) == n,
            "points (n, 3 or 4), weights, guesses, floors (n)");
    REQUIRE(k >= 1 && COLS(v[2]) == dims && ROWS(v[11]) == k && COLS(v[11]) == dims && ROWS(v[12]) == k,
            "centres, sums (k, dims), mass (k)");
    REQUIRE(ROWS(v[8]) == n && ROWS(v[9]) == n && ROWS(v[10]) == n, "labels, upper, lower: n entries");
    if (!table_ok(&v[5], &v[6], &v[7], k))
        goto fail;
    const int64_t *guesses = v[3].buf;
    for (int64_t i = 0; i < n; i++)
        REQUIRE(guesses[i] >= 0 && guesses[i] < k, "guesses must be centre numbers");
    kmz_table table = {v[5].buf, v[6].buf, COLS(v[5]), v[7].buf};
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    status = kmz_assign(v[0].buf, dims, v[1].buf, n, v[2].buf, k, v[3].buf, v[4].buf, &table, v[8].buf,
                        v[9].buf, v[10].buf, v[11].buf, v[12].buf, &poll);
    KMZ_ACQUIRE(released);
    release(v, 13);
    if (kmz_status(status) < 0)
        return NULL;
    Py_RETURN_NONE;
fail:
    release(v, 13);
    return NULL;
}

static PyObject *move(PyObject *self, PyObject *args) {
    static const spec specs[] = {
        {"points", F32, 2, 0}, {"weights", F64, 1, 0}, {"old", F64, 2, 0}, {"new", F64, 2, 0},
        {"labels", I64, 1, 1}, {"upper", F64, 1, 1}, {"lower", F64, 1, 1}, {"sums", F64, 2, 1},
        {"mass", F64, 1, 1}, {"ranked", F64, 2, 0}, {"order", I32, 2, 0}, {"drift", F64, 1, 1}};
    Py_buffer v[12];
    if (get_buffers(args, specs, 12, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), k = ROWS(v[3]);
    int status, dims = (int)COLS(v[0]);
    double changed = 0.0;
    REQUIRE((dims == 3 || dims == 4) && ROWS(v[1]) == n && ROWS(v[4]) == n && ROWS(v[5]) == n && ROWS(v[6]) == n,
            "points (n, 3 or 4), weights, labels, upper, lower (n)");
    REQUIRE(k >= 1 && ROWS(v[2]) == k && COLS(v[2]) == dims && COLS(v[3]) == dims && ROWS(v[7]) == k
            && COLS(v[7]) == dims && ROWS(v[8]) == k, "old, new, sums (k, dims), mass (k)");
    if (!table_ok(&v[9], &v[10], &v[11], k))
        goto fail;
    const int64_t *labels = v[4].buf;
    for (int64_t i = 0; i < n; i++)
        REQUIRE(labels[i] >= 0 && labels[i] < k, "labels must be centre numbers");
    kmz_table table = {v[9].buf, v[10].buf, COLS(v[9]), v[11].buf};
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    status = kmz_move(v[0].buf, dims, v[1].buf, n, v[2].buf, v[3].buf, k, v[4].buf, v[5].buf, v[6].buf,
                      v[7].buf, v[8].buf, &table, &changed, &poll);
    KMZ_ACQUIRE(released);
    release(v, 12);
    if (kmz_status(status) < 0)
        return NULL;
    return PyFloat_FromDouble(changed);
fail:
    release(v, 12);
    return NULL;
}

static PyObject *distances(PyObject *self, PyObject *args) {
    static const spec specs[] = {{"centres", F64, 2, 0}, {"apart", F64, 2, 1}};
    Py_buffer v[2];
    if (get_buffers(args, specs, 2, v) < 0)
        return NULL;
    int64_t k = ROWS(v[0]);
    int dims = (int)COLS(v[0]);
    REQUIRE((dims == 3 || dims == 4) && ROWS(v[1]) == k && COLS(v[1]) == k, "centres (k, 3 or 4), apart (k, k)");
    Py_BEGIN_ALLOW_THREADS
    kmz_distances(v[0].buf, dims, k, v[1].buf);
    Py_END_ALLOW_THREADS
    release(v, 2);
    Py_RETURN_NONE;
fail:
    release(v, 2);
    return NULL;
}

static PyObject *rank(PyObject *self, PyObject *args) {
    static const spec specs[] = {{"apart", F64, 2, 0}, {"order", I32, 2, 1}, {"ranked", F64, 2, 1}};
    Py_buffer v[3];
    if (get_buffers(args, specs, 3, v) < 0)
        return NULL;
    int64_t k = ROWS(v[0]);
    REQUIRE(COLS(v[0]) == k && ROWS(v[1]) == k && COLS(v[1]) == k && ROWS(v[2]) == k && COLS(v[2]) == k,
            "apart, order, ranked: (k, k) each");
    const int32_t *order = v[1].buf;
    for (int64_t t = 0; t < k * k; t++)
        REQUIRE(order[t] >= 0 && order[t] < k, "order must hold centre numbers");
    Py_BEGIN_ALLOW_THREADS
    kmz_rank(v[0].buf, k, v[1].buf, v[2].buf);
    Py_END_ALLOW_THREADS
    release(v, 3);
    Py_RETURN_NONE;
fail:
    release(v, 3);
    return NULL;
}

static PyObject *error(PyObject *self, PyObject *args) {
    static const spec specs[] = {{"points", F32, 2, 0}, {"weights", F64, 1, 0}, {"centres", F64, 2, 0},
                                 {"labels", I64, 1, 0}};
    Py_buffer v[4];
    if (get_buffers(args, specs, 4, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), k = ROWS(v[2]);
    int dims = (int)COLS(v[0]);
    REQUIRE((dims == 3 || dims == 4) && ROWS(v[1]) == n && ROWS(v[3]) == n && COLS(v[2]) == dims,
            "points (n, 3 or 4), centres (k, dims)");
    const int64_t *labels = v[3].buf;
    for (int64_t i = 0; i < n; i++)
        REQUIRE(labels[i] >= 0 && labels[i] < k, "labels must be centre numbers");
    double total;
    Py_BEGIN_ALLOW_THREADS
    total = kmz_error(v[0].buf, dims, v[1].buf, n, v[2].buf, labels);
    Py_END_ALLOW_THREADS
    release(v, 4);
    return PyFloat_FromDouble(total);
fail:
    release(v, 4);
    return NULL;
}

static PyObject *inherit(PyObject *self, PyObject *args) {
    static const spec specs[] = {{"points", F32, 2, 0}, {"parents", F32, 2, 0}, {"parent_of", I64, 1, 0},
                                 {"labels", I64, 1, 0}, {"lower", F64, 1, 0}, {"guesses", I64, 1, 1},
                                 {"floors", F64, 1, 1}};
    Py_buffer v[7];
    if (get_buffers(args, specs, 7, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), parents = ROWS(v[1]);
    int dims = (int)COLS(v[0]);
    REQUIRE((dims == 3 || dims == 4) && COLS(v[1]) == dims && ROWS(v[2]) == n && ROWS(v[5]) == n && ROWS(v[6]) == n,
            "points (n, 3 or 4), parents (p, dims), parent_of, guesses, floors (n)");
    REQUIRE(ROWS(v[3]) == parents && ROWS(v[4]) == parents, "labels, lower: one per parent");
    const int64_t *parent_of = v[2].buf;
    for (int64_t i = 0; i < n; i++)
        REQUIRE(parent_of[i] >= 0 && parent_of[i] < parents, "parent_of must be parent numbers");
    Py_BEGIN_ALLOW_THREADS
    kmz_inherit(v[0].buf, dims, n, v[1].buf, parent_of, v[3].buf, v[4].buf, v[5].buf, v[6].buf);
    Py_END_ALLOW_THREADS
    release(v, 7);
    Py_RETURN_NONE;
fail:
    release(v, 7);
    return NULL;
}

static PyObject *nearest(PyObject *self, PyObject *args) {
    static const spec specs[] = {{"points", F32, 2, 0}, {"centres", F64, 2, 0}, {"labels", I64, 1, 1}};
    Py_buffer v[3];
    if (get_buffers(args, specs, 3, v) < 0)
        return NULL;
    int64_t n = ROWS(v[0]), k = ROWS(v[1]);
    int status, dims = (int)COLS(v[0]);
    REQUIRE((dims == 3 || dims == 4) && COLS(v[1]) == dims && k >= 1 && ROWS(v[2]) == n,
            "points (n, 3 or 4), centres (k >= 1, dims), labels (n)");
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    status = kmz_nearest(v[0].buf, dims, n, v[1].buf, k, v[2].buf, &poll);
    KMZ_ACQUIRE(released);
    release(v, 3);
    if (kmz_status(status) < 0)
        return NULL;
    Py_RETURN_NONE;
fail:
    release(v, 3);
    return NULL;
}

static PyMethodDef methods[] = {
    {"nearest", nearest, METH_VARARGS, "nearest(points, centres, labels)"},
    {"count_keys", count_keys, METH_VARARGS, "count_keys(values, number, keys, counts) -> distinct keys"},
    {"count_pixels", count_pixels, METH_VARARGS, "count_pixels(pixels, number, keys, counts) -> distinct colours"},
    {"seed", seed, METH_VARARGS, "seed(points, weights, draws, chosen, labels)"},
    {"seed_runs", seed_runs, METH_VARARGS, "seed_runs(points, weights, draws, chosen, labels): seed's, for large k"},
    {"assign", assign, METH_VARARGS,
     "assign(points, weights, centres, guesses, floors, ranked, order, drift, labels, upper, lower, sums, mass)"},
    {"move", move, METH_VARARGS,
     "move(points, weights, old, new, labels, upper, lower, sums, mass, ranked, order, drift) -> changed weight"},
    {"distances", distances, METH_VARARGS, "distances(centres, apart)"},
    {"rank", rank, METH_VARARGS, "rank(apart, order, ranked)"},
    {"error", error, METH_VARARGS, "error(points, weights, centres, labels) -> weighted squared error"},
    {"inherit", inherit, METH_VARARGS, "inherit(points, parents, parent_of, labels, lower, guesses, floors)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kmz._kmeans", "The quantizer's compiled kernels (see quantize.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__kmeans(void) {
    return PyModule_Create(&module);
}
