/* kmz._coding: the coded index data of codings 1 ("ctx", ctx.c) and 2 ("mix", mix.c)
 * for entropy.py. Both kernels share their statuses' numbers.
 *
 * Argument checks and buffer handling only; entropy.py turns statuses into kmz's
 * errors. The kernels run with the GIL released and stop on Ctrl-C.
 */
#include "module.h"

#include "ctx.h"
#include "mix.h"

#define CODING_CTX 1
#define CODING_MIX 2

#if KMZ_MIX_MAX_K != KMZ_CTX_MAX_K
#error "get_palette checks one K limit for both codings"
#endif
#if KMZ_MIX_TRUNCATED != KMZ_CTX_TRUNCATED || KMZ_MIX_TRAILING != KMZ_CTX_TRAILING || \
    KMZ_MIX_BAD_START != KMZ_CTX_BAD_START || KMZ_MIX_RANGE != KMZ_CTX_RANK || KMZ_MIX_INDEX != KMZ_CTX_INDEX
#error "entropy.py maps one set of status numbers for both codings"
#endif

/* A palette: (k, 3) bytes (RGB) or (k, 4) (RGBA), 1 <= k <= KMZ_CTX_MAX_K. */
static int get_palette(PyObject *object, Py_buffer *view) {
    if (kmz_buffer(object, view, "palette", "B", 2, 0) < 0)
        return -1;
    if ((view->shape[1] != 3 && view->shape[1] != 4) || view->shape[0] < 1 || view->shape[0] > KMZ_CTX_MAX_K) {
        PyErr_Format(PyExc_ValueError, "palette must be (k, 3) or (k, 4) with k from 1 to %d", KMZ_CTX_MAX_K);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int check_coding(int coding) {
    if (coding == CODING_CTX || coding == CODING_MIX)
        return 0;
    PyErr_Format(PyExc_ValueError, "coding must be %d (ctx) or %d (mix), not %d", CODING_CTX, CODING_MIX, coding);
    return -1;
}

static PyObject *encode(PyObject *self, PyObject *args) {
    PyObject *indices_object, *palette_object;
    int coding;
    if (!PyArg_ParseTuple(args, "OOi:encode", &indices_object, &palette_object, &coding) || check_coding(coding) < 0)
        return NULL;
    Py_buffer indices, palette;
    if (kmz_buffer(indices_object, &indices, "indices", "H", 2, 0) < 0)
        return NULL;
    if (get_palette(palette_object, &palette) < 0) {
        PyBuffer_Release(&indices);
        return NULL;
    }
    int64_t height = indices.shape[0], width = indices.shape[1], k = palette.shape[0], size = 0, pixel = 0;
    if (width == 0 || height == 0) {
        PyBuffer_Release(&indices);
        PyBuffer_Release(&palette);
        PyErr_SetString(PyExc_ValueError, "indices must be a non-empty (H, W) array");
        return NULL;
    }
    uint8_t *payload = NULL;
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    int status = (coding == CODING_CTX ? kmz_ctx_encode : kmz_mix_encode)(
        indices.buf, width, height, palette.buf, k, (int)palette.shape[1], &payload, &size, &pixel, &poll);
    KMZ_ACQUIRE(released);
    PyBuffer_Release(&indices);
    PyBuffer_Release(&palette);
    if (kmz_status(status) < 0)
        return NULL;
    if (status == KMZ_CTX_INDEX)
        return PyErr_Format(PyExc_ValueError, "indices must be below K = %lld: pixel %lld is not",
                            (long long)k, (long long)pixel);
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)payload, size);
    free(payload);
    return bytes;
}

static PyObject *order(PyObject *self, PyObject *args) {
    PyObject *palette_object, *order_object;
    long long ref;
    if (!PyArg_ParseTuple(args, "OLO:order", &palette_object, &ref, &order_object))
        return NULL;
    Py_buffer palette, out;
    if (get_palette(palette_object, &palette) < 0)
        return NULL;
    if (kmz_buffer(order_object, &out, "order", "H", 1, 1) < 0) {
        PyBuffer_Release(&palette);
        return NULL;
    }
    int64_t k = palette.shape[0];
    int status = KMZ_OK;
    if (ref < 0 || ref >= k || out.shape[0] != k)
        PyErr_SetString(PyExc_ValueError, "ref must be a palette index and order have k entries");
    else
        status = kmz_ctx_order(palette.buf, k, (int)palette.shape[1], ref, out.buf);
    PyBuffer_Release(&palette);
    PyBuffer_Release(&out);
    if (PyErr_Occurred() || kmz_status(status) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Decoder(payload, palette, width, height, coding): holds the payload's buffer while
 * it lives. For coding 2, `palette` is the pair (k, channels): its payload holds the
 * palette (Decoder.palette()). */
typedef struct {
    PyObject_HEAD
    Py_buffer payload;
    int coding;
    void *decoder; /* a kmz_ctx_decoder or a kmz_mix_decoder */
    int64_t done, total, k;
    int channels;
    int busy; /* decoding in some thread, with the GIL released */
} Decoder;

static int Decoder_init(Decoder *self, PyObject *args, PyObject *kwargs) {
    PyObject *payload_object, *palette_object;
    long long width, height;
    int coding;
    static char *keywords[] = {"payload", "palette", "width", "height", "coding", NULL};
    if (self->decoder) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOLLi:Decoder", keywords, &payload_object, &palette_object,
                                     &width, &height, &coding) ||
        check_coding(coding) < 0)
        return -1;
    if (width < 1 || height < 1 || width > INT64_MAX / height) {
        PyErr_SetString(PyExc_ValueError, "width and height must be positive");
        return -1;
    }
    /* Coding 1 is given the file's palette; coding 2's payload holds it, so it is given
     * only its shape. */
    Py_buffer palette = {0};
    long long k;
    int channels;
    if (coding == CODING_CTX) {
        if (get_palette(palette_object, &palette) < 0)
            return -1;
        k = palette.shape[0];
        channels = (int)palette.shape[1];
    } else if (!PyArg_ParseTuple(palette_object, "Li", &k, &channels) || k < 1 || k > KMZ_MIX_MAX_K ||
               (channels != 3 && channels != 4)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "coding 2 is given the palette's shape: (k, 3) or (k, 4), k from 1 to %d",
                     KMZ_MIX_MAX_K);
        return -1;
    }
    if (kmz_buffer(payload_object, &self->payload, "payload", "B", 1, 0) < 0) {
        if (coding == CODING_CTX)
            PyBuffer_Release(&palette);
        return -1;
    }
    self->coding = coding;
    self->k = k;
    self->channels = channels;
    if (coding == CODING_CTX) {
        self->decoder = kmz_ctx_decoder_new(self->payload.buf, self->payload.len, palette.buf, k, channels, width,
                                            height);
        PyBuffer_Release(&palette);
    } else {
        self->decoder = kmz_mix_decoder_new(self->payload.buf, self->payload.len, k, channels, width, height);
    }
    if (!self->decoder) {
        PyBuffer_Release(&self->payload);
        PyErr_NoMemory();
        return -1;
    }
    self->done = 0;
    self->total = width * height;
    return 0;
}

static void Decoder_dealloc(Decoder *self) {
    if (self->decoder) {
        if (self->coding == CODING_CTX)
            kmz_ctx_decoder_free(self->decoder);
        else
            kmz_mix_decoder_free(self->decoder);
        PyBuffer_Release(&self->payload);
    }
    PyTypeObject *type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyObject *Decoder_decode(Decoder *self, PyObject *args) {
    PyObject *image_object;
    if (!PyArg_ParseTuple(args, "O:decode", &image_object))
        return NULL;
    if (!self->decoder || self->busy) {
        PyErr_SetString(PyExc_RuntimeError, self->busy ? "Decoder is busy in another thread"
                                                       : "Decoder is not initialised");
        return NULL;
    }
    Py_buffer image;
    if (kmz_buffer(image_object, &image, "image", "H", 1, 1) < 0)
        return NULL;
    int64_t count = image.shape[0] - self->done, pixel = 0;
    if (count < 0 || image.shape[0] > self->total) {
        PyBuffer_Release(&image);
        return PyErr_Format(PyExc_ValueError, "image: %lld entries, with %lld pixels decoded of %lld",
                            (long long)image.shape[0], (long long)self->done, (long long)self->total);
    }
    self->busy = 1;
    kmz_released released;
    kmz_poll poll;
    KMZ_RELEASE(released, poll);
    uint16_t *pixels = image.buf;
    int status = self->coding == CODING_CTX ? kmz_ctx_decode(self->decoder, pixels + self->done, count, &pixel, &poll)
                                            : kmz_mix_decode(self->decoder, pixels, count, &pixel, &poll);
    KMZ_ACQUIRE(released);
    self->busy = 0;
    PyBuffer_Release(&image);
    if (kmz_status(status) < 0)
        return NULL;
    if (status == KMZ_OK)
        self->done += count;
    return Py_BuildValue("iL", status, (long long)pixel);
}

static PyObject *Decoder_palette(Decoder *self, PyObject *unused) {
    if (!self->decoder || self->busy || self->coding != CODING_MIX) {
        PyErr_SetString(PyExc_RuntimeError, !self->decoder ? "Decoder is not initialised"
                                            : self->busy  ? "Decoder is busy in another thread"
                                                          : "coding 1 keeps the palette out of its payload");
        return NULL;
    }
    PyObject *palette = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(self->k * self->channels));
    if (!palette)
        return NULL;
    int status = kmz_mix_decode_palette(self->decoder, (uint8_t *)PyBytes_AS_STRING(palette));
    if (status != KMZ_OK) {
        Py_DECREF(palette);
        return Py_BuildValue("iO", status, Py_None);
    }
    return Py_BuildValue("iN", status, palette);
}

static PyMethodDef Decoder_methods[] = {
    {"palette", (PyCFunction)Decoder_palette, METH_NOARGS,
     "palette() -> (status, bytes or None): coding 2's palette, k x channels bytes, from the payload's start; "
     "status 0, or a mix.h status"},
    {"decode", (PyCFunction)Decoder_decode, METH_VARARGS,
     "decode(image) -> (status, pixel): the pixels after those decoded so far, up to len(image), "
     "into image (uint16, the whole image so far); status 0, or a ctx.h/mix.h status with the pixel "
     "where it was found"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Decoder_slots[] = {
    {Py_tp_doc, "Decoder(payload, palette, width, height, coding): a coding-1 or -2 payload decoded a chunk "
                "at a time; for coding 2, palette is (k, channels) and palette() gives the palette."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Decoder_init},
    {Py_tp_dealloc, Decoder_dealloc},
    {Py_tp_methods, Decoder_methods},
    {0, NULL},
};

static PyType_Spec Decoder_spec = {"kmz._coding.Decoder", sizeof(Decoder), 0, Py_TPFLAGS_DEFAULT, Decoder_slots};

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(indices, palette, coding) -> payload: indices (H, W) uint16, palette (k, 3) or (k, 4) uint8, "
     "coding 1 or 2"},
    {"order", order, METH_VARARGS, "order(palette, ref, order): the palette indices by distance to entry ref"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kmz._coding", "Codings 1 (\"ctx\") and 2 (\"mix\"), compiled (see entropy.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__coding(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    PyObject *type = PyType_FromSpec(&Decoder_spec);
    if (!type || PyModule_AddObject(m, "Decoder", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
