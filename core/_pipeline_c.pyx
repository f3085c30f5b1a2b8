# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled hot path: validate, deduplicate, aggregate, as ``_pipeline_py`` does but fast.

Same API, same results, same messages as the reference (hypothesis checks it on arbitrary input).
Speed comes from scanning strings in C, parsing UUIDv7 ids and datetimes without Python objects,
and touching each event's attributes once. Constants, errors and key hashing are imported from the
shared Python modules so that the two implementations can't drift apart.
"""

import os
import unicodedata

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport Py_EQ, PyObject_Hash, PyObject_RichCompareBool
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.datetime cimport (
    PyDateTime_Check,
    datetime_day,
    datetime_hour,
    datetime_microsecond,
    datetime_minute,
    datetime_month,
    datetime_second,
    datetime_tzinfo,
    datetime_year,
    import_datetime,
    timedelta_days,
    timedelta_microseconds,
    timedelta_seconds,
)
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset


cdef extern from "Python.h":
    ctypedef struct PyObject
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    int PyUnicode_KIND(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    int PyUnicode_1BYTE_KIND
    int PyUnicode_2BYTE_KIND
    char* PyBytes_AS_STRING(object)
    bint PyUnicode_IS_COMPACT_ASCII(object)
    object PyUnicode_New(Py_ssize_t, Py_UCS4)
    uint8_t* PyUnicode_1BYTE_DATA(object)
    Py_ssize_t PyDict_GET_SIZE(object)
    Py_ssize_t PySet_GET_SIZE(object)
    PyObject* PyDict_SetDefault(object, object, object) except NULL
    PyObject* PyList_GET_ITEM(object, Py_ssize_t)

from ._keys import key_maker
from ._models import (
    HOUR_MS,
    MAX_COMMENT_CHARS,
    MAX_FORM_CHARS,
    MAX_ID_CHARS,
    MAX_LOCALE_CHARS,
    METRIC_RANGES,
    MIN_NONCE_BYTES,
    CONTROL_CHARACTERS,
    Event,
    Record,
    Rejection,
)

import_datetime()


cdef Py_ssize_t _slot_offset(object cls, str name) except -1:
    """Where a msgspec Struct keeps field ``name`` in its instances (from its descriptor)."""
    descriptor = cls.__dict__[name]
    if type(descriptor).__name__ != "member_descriptor":
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    return (<PyMemberDescrObject*>descriptor).d_member.offset


cdef inline object _slot(object obj, Py_ssize_t offset):
    # Struct fields are slots that msgspec always fills; reading one directly skips the
    # attribute protocol, which was a tenth of the hot path's time.
    return <object>(<PyObject**>((<char*><PyObject*>obj) + offset))[0]


cdef Py_ssize_t _E_CHANNEL = _slot_offset(Event, "channel")
cdef Py_ssize_t _E_FORM = _slot_offset(Event, "form")
cdef Py_ssize_t _E_METRIC = _slot_offset(Event, "metric")
cdef Py_ssize_t _E_SCORE = _slot_offset(Event, "score")
cdef Py_ssize_t _E_ID = _slot_offset(Event, "id")
cdef Py_ssize_t _E_COMMENT = _slot_offset(Event, "comment")
cdef Py_ssize_t _E_RESPONDENT = _slot_offset(Event, "respondent")
cdef Py_ssize_t _E_VOTE_KEY = _slot_offset(Event, "vote_key")
cdef Py_ssize_t _E_TS = _slot_offset(Event, "ts")
cdef Py_ssize_t _E_LOCALE = _slot_offset(Event, "locale")
cdef Py_ssize_t _E_TAGS = _slot_offset(Event, "tags")
cdef Py_ssize_t _E_META = _slot_offset(Event, "meta")
cdef Py_ssize_t _R_KEY = _slot_offset(Record, "key")
cdef Py_ssize_t _R_TS = _slot_offset(Record, "ts_ms")
cdef Py_ssize_t _R_CHANNEL = _slot_offset(Record, "channel")
cdef Py_ssize_t _R_FORM = _slot_offset(Record, "form")
cdef Py_ssize_t _R_METRIC = _slot_offset(Record, "metric")
cdef Py_ssize_t _R_SCORE = _slot_offset(Record, "score")
cdef Py_ssize_t _R_COMMENT = _slot_offset(Record, "comment")


cdef extern from *:
    """
    #if defined(__GNUC__)
    #define VX_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define VX_PREFETCH(p) ((void)0)
    #endif
    /* Ask for the objects an Event's slots at the given offsets point to. */
    static inline void vx_prefetch_fields(PyObject *event, PyObject *type,
                                          const Py_ssize_t *offsets, int count) {
        int k;
        if ((PyObject *)Py_TYPE(event) != type) return;
        for (k = 0; k < count; k++) VX_PREFETCH(*(PyObject **)((char *)event + offsets[k]));
    }
    /* Ask for both cache lines of an Event (its slots run past the first) and of the id's
       text (a UUID's characters start in the first line and end in the second). */
    static inline void vx_prefetch_event(PyObject *event) {
        VX_PREFETCH(event);
        VX_PREFETCH((char *)event + 64);
    }
    /* Ask for the whole text of an Event's comment, whose header is in the cache by now. */
    static inline void vx_prefetch_comment(PyObject *event, PyObject *type,
                                           Py_ssize_t comment_at) {
        PyObject *comment;
        const char *data, *end;
        if ((PyObject *)Py_TYPE(event) != type) return;
        comment = *(PyObject **)((char *)event + comment_at);
        if (!PyUnicode_CheckExact(comment) || !PyUnicode_IS_COMPACT(comment)) return;
        data = (const char *)PyUnicode_DATA(comment);
        end = data + PyUnicode_GET_LENGTH(comment) * PyUnicode_KIND(comment);
        if (end - data > 4096) end = data + 4096;
        for (; data < end; data += 64) VX_PREFETCH(data);
    }
    """
    void VX_PREFETCH(const void* p) noexcept nogil
    void vx_prefetch_fields(PyObject* event, PyObject* type, const Py_ssize_t* offsets,
                            int count) noexcept nogil
    void vx_prefetch_comment(PyObject* event, PyObject* type, Py_ssize_t comment_at) noexcept nogil
    void vx_prefetch_event(PyObject* event) noexcept nogil


# the slots of an Event that ``_to_record`` reads an object of, for vx_prefetch_fields
cdef Py_ssize_t _E_READ[8]
_E_READ[:] = [_E_ID, _E_CHANNEL, _E_FORM, _E_METRIC, _E_TS, _E_COMMENT, _E_RESPONDENT, _E_LOCALE]


cdef inline object _key_of(object record):
    return _slot(record, _R_KEY) if type(record) is Record else record.key

IMPLEMENTATION = "accelerated"

cdef object _UTC = __import__("datetime").timezone.utc
cdef object _normalize = unicodedata.normalize
cdef object _is_normalized = unicodedata.is_normalized
cdef Py_ssize_t _MAX_ID = MAX_ID_CHARS
cdef Py_ssize_t _MAX_FORM = MAX_FORM_CHARS
cdef Py_ssize_t _MAX_LOCALE = MAX_LOCALE_CHARS
cdef Py_ssize_t _MAX_COMMENT = MAX_COMMENT_CHARS
cdef int64_t _HOUR = HOUR_MS
cdef str _METRIC_NAMES = ", ".join(METRIC_RANGES)
# metric name -> (the one shared str of that name, low, high): records then carry shared strings
# whose hashes are computed once, which makes aggregation's dict lookups cheaper.
cdef dict _METRICS = {name: (name, low, high) for name, (low, high) in METRIC_RANGES.items()}
cdef dict _channel_sets = {}


cdef inline bint _same_text(object a, object b) noexcept:
    """``a == b`` for two exact ``str``: same length, same storage width, same bytes (a str is
    always stored in the narrowest width that holds it, so equal texts store alike)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(a)
    cdef int kind = PyUnicode_KIND(a)
    return a is b or (
        n == PyUnicode_GET_LENGTH(b) and kind == PyUnicode_KIND(b)
        and memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), n * kind) == 0
    )


cdef Py_ssize_t _MAX_SCANNED = 16


cdef tuple _scannable(object names):
    """``names`` as a tuple to search one by one, or None where that would not pay or not be
    exact (too many, or not all of them exact ``str``)."""
    found = tuple(names)
    if len(found) > _MAX_SCANNED or any(type(name) is not str for name in found):
        return None
    return found


cdef inline Py_ssize_t _index_of(object text, tuple names) noexcept:
    """Where ``text``, an exact ``str``, is in ``names`` (see ``_scannable``), or -1.

    A handful of comparisons of a few bytes cost less than hashing a string that was just
    decoded (its hash is not known yet) to look it up in a dict."""
    cdef Py_ssize_t k
    if names is None or type(text) is not str:
        return -1
    for k in range(len(names)):
        if _same_text(<object>PyTuple_GET_ITEM(names, k), text):
            return k
    return -1


# metric name -> (the one shared str of that name, low, high): records then carry shared strings
# whose hashes are computed once, which makes aggregation's dict lookups cheaper. The same in C
# arrays, found by ``_index_of(name, _METRIC_NAMES_SCANNED)``.
cdef tuple _METRIC_NAMES_SCANNED = _scannable(_METRICS)
cdef long long _metric_low[16]
cdef long long _metric_high[16]
for _code, (_low, _high) in enumerate(METRIC_RANGES.values()):
    if _code < _MAX_SCANNED:
        _metric_low[_code] = _low
        _metric_high[_code] = _high


cdef tuple _canonical_channels(object channels):
    """(name -> the one shared str of that name, the names for ``_index_of``) of a policy's
    channels, kept per set of channels."""
    found = _channel_sets.get(channels)
    if found is None:
        if len(_channel_sets) > 64:
            _channel_sets.clear()
        by_name = {name: name for name in channels}
        found = _channel_sets[channels] = (by_name, _scannable(by_name))
    return <tuple>found


cdef str _FORM_RULE = f"form must be 1-{MAX_FORM_CHARS} characters of A-Z a-z 0-9 . _ -"
cdef str _ID_RULE = f"id must be 1-{MAX_ID_CHARS} printable ASCII characters"
cdef str _LOCALE_RULE = (
    f"locale must be a BCP 47 tag of at most {MAX_LOCALE_CHARS} characters, like en or fa-IR"
)


cdef unsigned char _CONTROL = 1
cdef unsigned char _MAY_CHANGE = 2
cdef unsigned char _COMBINING = 4  # has a canonical combining class: its order matters
cdef unsigned char _MARKED = 8  # "@" or a decimal digit of any script: see ``suspects``
cdef unsigned int _FLAGGED_UPTO = 0x20000


def _character_tables():
    """Per code point below _FLAGGED_UPTO: flags, and the canonical combining class.

    Flags: _CONTROL, and _MAY_CHANGE where the character's NFC quick-check property (UAX #15)
    is not "Yes": it fails NFC on its own, or it can be the second half of a canonical
    composition (Hangul vowels and trailing consonants included). A text without such a
    character whose combining marks come in canonical order is in NFC already: that is the
    standard quick check. Built from this Python's ``unicodedata`` so it matches the reference
    exactly. Code points above the table are always checked in full.
    """
    flags = bytearray(_FLAGGED_UPTO)
    classes = bytearray(_FLAGGED_UPTO)
    seconds = set()
    for code in range(_FLAGGED_UPTO):
        parts = unicodedata.decomposition(chr(code)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(int(parts[1], 16))
    seconds.update(range(0x1161, 0x1176))  # Hangul vowels (V)
    seconds.update(range(0x11A8, 0x11C3))  # Hangul trailing consonants (T)
    for code in range(_FLAGGED_UPTO):
        ch = chr(code)
        classes[code] = unicodedata.combining(ch)
        if CONTROL_CHARACTERS.match(ch):
            flags[code] = _CONTROL
        elif code in seconds or not _is_normalized("NFC", ch):
            flags[code] = _MAY_CHANGE
        if classes[code]:
            flags[code] |= _COMBINING
        if ch == "@" or ch.isdecimal():
            flags[code] |= _MARKED
    return bytes(flags), bytes(classes)


_FLAGS, _CLASSES = _character_tables()
cdef const unsigned char* _flag_of = <const unsigned char*>PyBytes_AS_STRING(_FLAGS)
cdef const unsigned char* _class_of = <const unsigned char*>PyBytes_AS_STRING(_CLASSES)


cdef extern from *:
    """
    /* A word-at-a-time test that eight Latin-1 characters are all printable ASCII (0x20-0x7E):
       a byte at or above 0x80 sets its top bit in w; below it, adding 1 sets the top bit from
       0x7F up, and (w | top) - 0x20 clears it below 0x20, without carries or borrows between
       bytes (a carry out of a byte that is already too high changes nothing). */
    #define VX_TOP8 0x8080808080808080ULL
    static inline uint64_t vx_word(const void *p) { uint64_t w; memcpy(&w, p, 8); return w; }
    /* The top bits of the lanes that are not printable ASCII; "never" is VX_TOP8 to have
       every word read in full. */
    static inline uint64_t vx_unprintable8(uint64_t w, uint64_t never) {
        return (w | (w + 0x0101010101010101ULL) | ~((w | VX_TOP8) - 0x2020202020202020ULL)
                | never) & VX_TOP8;
    }
    /* The flag table and the combining classes of code points below its size, and the flags. */
    typedef struct {
        const unsigned char *flag_of;
        const unsigned char *class_of;
        unsigned char combining;
        unsigned char may_change;
        int skip_printable;  /* no printable ASCII character has a flag that matters here */
    } vx_tables;

    /* Where the last combining mark was, and its class. */
    typedef struct {
        Py_ssize_t at;
        unsigned char ccc;
    } vx_marks;

    /* c's flags, plus may_change if it is a combining mark that directly follows a mark of a
       higher canonical class (out of canonical order, UAX #15). */
    static inline unsigned char vx_flags_at(const vx_tables *t, uint32_t c, Py_ssize_t i,
                                            vx_marks *marks) {
        unsigned char flags = t->flag_of[c];
        if (flags & t->combining) {
            unsigned char ccc = t->class_of[c];
            if (marks->at == i - 1 && marks->ccc > ccc) flags |= t->may_change;
            marks->at = i;
            marks->ccc = ccc;
        }
        return flags;
    }

    #if defined(__GNUC__)
    #define VX_NOINLINE __attribute__((noinline))
    #else
    #define VX_NOINLINE
    #endif

    /* The four characters from p[i] on one by one: kept out of the hot loop's registers. */
    static VX_NOINLINE unsigned char vx_marks4(const vx_tables *t, const uint16_t *p,
                                               Py_ssize_t i, vx_marks *marks) {
        return vx_flags_at(t, p[i], i, marks) | vx_flags_at(t, p[i + 1], i + 1, marks)
               | vx_flags_at(t, p[i + 2], i + 2, marks) | vx_flags_at(t, p[i + 3], i + 3, marks);
    }

    /* Latin-1: no combining marks. */
    static unsigned char vx_scan1(const vx_tables *t, const uint8_t *p, Py_ssize_t n) {
        const unsigned char *f = t->flag_of;
        const uint64_t never = t->skip_printable ? 0 : VX_TOP8;
        const uint8_t *end = p + n, *whole = p + (n & ~(Py_ssize_t)7);
        unsigned char seen = 0;
        for (; p < whole; p += 8) {
            if (vx_unprintable8(vx_word(p), never))
                seen |= f[p[0]] | f[p[1]] | f[p[2]] | f[p[3]] | f[p[4]] | f[p[5]] | f[p[6]]
                        | f[p[7]];
        }
        for (; p < end; p++) seen |= f[*p];
        return seen;
    }

    #if defined(__SSE2__)
    #include <emmintrin.h>
    /* Whether the eight UCS-2 characters at p are all printable ASCII (0x20-0x7E): c - 0x20
       wraps below 0x20, and a saturating subtraction of 0x5E leaves 0 only up to 0x7E. */
    static inline int vx_printable8_ucs2(const uint16_t *p) {
        __m128i v = _mm_sub_epi16(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi16(0x20));
        __m128i over = _mm_subs_epu16(v, _mm_set1_epi16(0x5E));
        return _mm_movemask_epi8(_mm_cmpeq_epi16(over, _mm_setzero_si128())) == 0xFFFF;
    }
    #define VX_SKIP_UCS2 1
    #else
    #define VX_SKIP_UCS2 0
    #define vx_printable8_ucs2(p) 0
    #endif

    /* A word of the vector unit skips eight characters of printable ASCII (the Latin runs of
       a mixed text) in a few instructions; other runs take eight lookups. Without SSE2 the skip
       would cost as much as the lookups, and there is none. */
    static unsigned char vx_scan2(const vx_tables *t, const uint16_t *p, Py_ssize_t n) {
        const unsigned char *f = t->flag_of;
        const unsigned char combining = t->combining;
        const int skip = VX_SKIP_UCS2 && t->skip_printable;
        vx_marks marks = {-2, 0};
        unsigned char seen = 0;
        Py_ssize_t i, whole = n & ~(Py_ssize_t)7;
        unsigned char low, high;
        for (i = 0; i < whole; i += 8) {
            /* printable ASCII has no combining class: skipping it leaves the marks' order
               checks as they are */
            if (skip && vx_printable8_ucs2(p + i)) continue;
            low = f[p[i]] | f[p[i + 1]] | f[p[i + 2]] | f[p[i + 3]];
            high = f[p[i + 4]] | f[p[i + 5]] | f[p[i + 6]] | f[p[i + 7]];
            if ((low | high) & combining) {  /* a mark, rare: read again, checking its order */
                if (low & combining) low = vx_marks4(t, p, i, &marks);
                if (high & combining) high = vx_marks4(t, p, i + 4, &marks);
            }
            seen |= low | high;
        }
        for (; i < n; i++) seen |= vx_flags_at(t, p[i], i, &marks);
        return seen;
    }

    static unsigned char vx_scan4(const vx_tables *t, const uint32_t *p, Py_ssize_t n,
                                  uint32_t table_size) {
        vx_marks marks = {-2, 0};
        unsigned char seen = 0;
        Py_ssize_t i;
        for (i = 0; i < n; i++) {
            if (p[i] < table_size) seen |= vx_flags_at(t, p[i], i, &marks);
            else seen |= t->may_change;
        }
        return seen;
    }
    """
    ctypedef struct vx_tables:
        const unsigned char* flag_of
        const unsigned char* class_of
        unsigned char combining
        unsigned char may_change
        int skip_printable
    unsigned char vx_scan1(const vx_tables* t, const uint8_t* p, Py_ssize_t n) noexcept nogil
    unsigned char vx_scan2(const vx_tables* t, const uint16_t* p, Py_ssize_t n) noexcept nogil
    unsigned char vx_scan4(const vx_tables* t, const uint32_t* p, Py_ssize_t n,
                           uint32_t table_size) noexcept nogil


def _printable_ascii_is_plain():
    """Whether no printable ASCII character (0x20-0x7E) bears a flag that ``_scan`` reports:
    then a word of them can be skipped whole. (True of every Unicode version so far; checked
    here so that the skip can never hide a flag.)"""
    plain = _CONTROL | _MAY_CHANGE | _COMBINING
    return not any(_FLAGS[code] & plain for code in range(0x20, 0x7F))


cdef vx_tables _tables
_tables.flag_of = _flag_of
_tables.class_of = _class_of
_tables.combining = _COMBINING
_tables.may_change = _MAY_CHANGE
_tables.skip_printable = _printable_ascii_is_plain()


cdef inline unsigned char _scan(str text) noexcept:
    """The union of the flags of ``text``'s characters, read in its own storage width.

    Latin-1 texts skip runs of printable ASCII eight characters at a time. Wider texts OR the
    flags of eight characters at a time, and a run holding a combining mark (an Arabic vowel
    sign, an accent typed apart), rare even in the texts that have some, is read again
    character by character to check each mark's order against the mark before it. Code
    points above the table are always checked in full.
    """
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    if kind == PyUnicode_1BYTE_KIND:
        return vx_scan1(&_tables, <const uint8_t*>data, n)
    if kind == PyUnicode_2BYTE_KIND:
        return vx_scan2(&_tables, <const uint16_t*>data, n)
    return vx_scan4(&_tables, <const uint32_t*>data, n, _FLAGGED_UPTO)


cdef signed char _HEX[256]
for _code in range(256):
    _HEX[_code] = -1
for _code, _digit in enumerate("0123456789abcdef"):
    _HEX[ord(_digit)] = _code


cdef bint _id_ok(str event_id):
    cdef Py_ssize_t n = len(event_id)
    cdef Py_UCS4 c
    if n == 0 or n > _MAX_ID:
        return False
    for c in event_id:
        if c < 0x20 or c > 0x7E:
            return False
    return True


cdef extern from *:
    """
    /* The 16 bytes of the canonical UUID text p (36 characters, hyphens already checked)
       into out; 0 if a digit is not lowercase hex. hex maps a byte to its value or -1. */
    #define VX_HEX_BYTE(k, at) do { \
        signed char high_ = hex[p[at]], low_ = hex[p[(at) + 1]]; \
        bad |= high_ | low_; \
        out[k] = (uint8_t)((high_ << 4) | low_); \
    } while (0)
    static inline int vx_uuid_bytes(const signed char *hex, const uint8_t *p, uint8_t *out) {
        signed char bad = 0;
        VX_HEX_BYTE(0, 0); VX_HEX_BYTE(1, 2); VX_HEX_BYTE(2, 4); VX_HEX_BYTE(3, 6);
        VX_HEX_BYTE(4, 9); VX_HEX_BYTE(5, 11); VX_HEX_BYTE(6, 14); VX_HEX_BYTE(7, 16);
        VX_HEX_BYTE(8, 19); VX_HEX_BYTE(9, 21); VX_HEX_BYTE(10, 24); VX_HEX_BYTE(11, 26);
        VX_HEX_BYTE(12, 28); VX_HEX_BYTE(13, 30); VX_HEX_BYTE(14, 32); VX_HEX_BYTE(15, 34);
        return bad >= 0;
    }
    """
    bint vx_uuid_bytes(const signed char* hex, const uint8_t* p, uint8_t* out) noexcept nogil


cdef bytes _uuid7_bytes(str event_id):
    """The 16 bytes of a canonical lowercase UUIDv7, or None if ``event_id`` is not one."""
    cdef uint8_t buf[16]
    cdef const uint8_t* p
    if PyUnicode_GET_LENGTH(event_id) != 36 or PyUnicode_KIND(event_id) != PyUnicode_1BYTE_KIND:
        return None
    p = <const uint8_t*>PyUnicode_DATA(event_id)
    if (
        p[8] != 0x2D or p[13] != 0x2D or p[18] != 0x2D or p[23] != 0x2D or p[14] != 0x37
        or not (p[19] == 0x38 or p[19] == 0x39 or p[19] == 0x61 or p[19] == 0x62)
        or not vx_uuid_bytes(_HEX, p, buf)
    ):
        return None
    return PyBytes_FromStringAndSize(<char*>buf, 16)


# --- Keyed BLAKE2b-128 (RFC 7693), bit for bit what ``_keys.KeyMaker`` gets from hashlib ---------
# hashlib's objects cost three Python calls a hash (copy, update, digest), over a microsecond a
# pseudonym; the same sums done here, from a state that has already absorbed the key block, take a
# tenth of that.

# the two hex digits of each byte value, as they lie in memory
cdef uint16_t _HEX_PAIRS[256]
cdef const char* _HEX_DIGITS = b"0123456789abcdef"
for _code in range(256):
    (<char*>&_HEX_PAIRS[_code])[0] = _HEX_DIGITS[_code >> 4]
    (<char*>&_HEX_PAIRS[_code])[1] = _HEX_DIGITS[_code & 15]


cdef extern from *:
    """
    /* RFC 7693's compression function, on local variables so that they live in registers. */
    static const uint64_t vx_iv[8] = {
        0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL,
        0xA54FF53A5F1D36F1ULL, 0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL,
        0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};
    static const uint8_t vx_sigma[12][16] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
        {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
        {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
        {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
        {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
        {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
        {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
        {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
        {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
        {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
        {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};
    static inline uint64_t vx_load64(const uint8_t *p) {
        return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16)
            | ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40)
            | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
    }
    #define VX_ROTR(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
    #define VX_G(a, b, c, d, x, y) do { \
        a = a + b + (x); d = VX_ROTR(d ^ a, 32); c = c + d; b = VX_ROTR(b ^ c, 24); \
        a = a + b + (y); d = VX_ROTR(d ^ a, 16); c = c + d; b = VX_ROTR(b ^ c, 63); \
    } while (0)
    #define VX_ROUND(r) do { \
        VX_G(v0, v4, v8, v12, m[vx_sigma[r][0]], m[vx_sigma[r][1]]); \
        VX_G(v1, v5, v9, v13, m[vx_sigma[r][2]], m[vx_sigma[r][3]]); \
        VX_G(v2, v6, v10, v14, m[vx_sigma[r][4]], m[vx_sigma[r][5]]); \
        VX_G(v3, v7, v11, v15, m[vx_sigma[r][6]], m[vx_sigma[r][7]]); \
        VX_G(v0, v5, v10, v15, m[vx_sigma[r][8]], m[vx_sigma[r][9]]); \
        VX_G(v1, v6, v11, v12, m[vx_sigma[r][10]], m[vx_sigma[r][11]]); \
        VX_G(v2, v7, v8, v13, m[vx_sigma[r][12]], m[vx_sigma[r][13]]); \
        VX_G(v3, v4, v9, v14, m[vx_sigma[r][14]], m[vx_sigma[r][15]]); \
    } while (0)
    #if defined(__GNUC__)
    #define VX_ALWAYS_INLINE inline __attribute__((always_inline))
    #else
    #define VX_ALWAYS_INLINE inline
    #endif
    static VX_ALWAYS_INLINE void vx_compress_words(uint64_t h[8], const uint64_t m[16],
                                                   uint64_t counter, int last) {
        uint64_t v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6],
                 v7 = h[7], v8 = vx_iv[0], v9 = vx_iv[1], v10 = vx_iv[2], v11 = vx_iv[3],
                 v12 = vx_iv[4] ^ counter, v13 = vx_iv[5], v14 = last ? ~vx_iv[6] : vx_iv[6],
                 v15 = vx_iv[7];
        /* The rounds written out: the message schedule then indexes m by constants. */
        VX_ROUND(0); VX_ROUND(1); VX_ROUND(2); VX_ROUND(3); VX_ROUND(4); VX_ROUND(5);
        VX_ROUND(6); VX_ROUND(7); VX_ROUND(8); VX_ROUND(9); VX_ROUND(10); VX_ROUND(11);
        h[0] ^= v0 ^ v8; h[1] ^= v1 ^ v9; h[2] ^= v2 ^ v10; h[3] ^= v3 ^ v11;
        h[4] ^= v4 ^ v12; h[5] ^= v5 ^ v13; h[6] ^= v6 ^ v14; h[7] ^= v7 ^ v15;
    }
    static void vx_compress(uint64_t h[8], const uint8_t *block, uint64_t counter, int last) {
        uint64_t m[16];
        int i;
        for (i = 0; i < 16; i++) m[i] = vx_load64(block + 8 * i);
        vx_compress_words(h, m, counter, last);
    }
    /* The one and last block of a message of at most 16 bytes (a respondent's id, mostly):
       its other fourteen words are zero, and this copy of the rounds is compiled with the
       zeros folded in, and takes about a quarter fewer instructions. */
    static void vx_compress_short(uint64_t h[8], uint64_t m0, uint64_t m1, uint64_t counter) {
        const uint64_t m[16] = {m0, m1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        vx_compress_words(h, m, counter, 1);
    }
    """
    const uint64_t* vx_iv
    uint64_t vx_load64(const uint8_t* p) noexcept nogil
    void vx_compress(uint64_t* h, const uint8_t* block, uint64_t counter,
                     int last) noexcept nogil
    void vx_compress_short(uint64_t* h, uint64_t m0, uint64_t m1, uint64_t counter) noexcept nogil


cdef class _Mac:
    """Keyed BLAKE2b with a 16-byte digest for one key and personalisation.

    Keeps the state before the key block (hashing the empty message needs it) and the state
    after it (every other message starts there).
    """

    cdef uint64_t _initial[8]
    cdef uint64_t _keyed[8]
    cdef uint8_t _key_block[128]

    def __init__(self, bytes key, bytes person):
        cdef Py_ssize_t i
        cdef uint8_t salted[16]
        if not 0 < len(key) <= 64 or len(person) > 16:
            raise ValueError("BLAKE2b takes a key of 1-64 bytes and a person of <= 16")
        for i in range(16):
            salted[i] = person[i] if i < len(person) else 0
        for i in range(8):
            self._initial[i] = vx_iv[i]
        self._initial[0] ^= 0x01010000 | (<uint64_t>len(key) << 8) | 16
        self._initial[6] ^= vx_load64(salted)
        self._initial[7] ^= vx_load64(salted + 8)
        for i in range(128):
            self._key_block[i] = key[i] if i < len(key) else 0
        for i in range(8):
            self._keyed[i] = self._initial[i]
        vx_compress(self._keyed, self._key_block, 128, False)

    cdef void digest_into(self, const uint8_t* data, Py_ssize_t n, uint8_t* out) noexcept:
        cdef uint64_t h[8]
        cdef uint8_t block[128]
        cdef uint64_t counter = 128
        cdef Py_ssize_t i
        if n == 0:
            for i in range(8):
                h[i] = self._initial[i]
            vx_compress(h, self._key_block, 128, True)
        elif n <= 16:
            for i in range(8):
                h[i] = self._keyed[i]
            memcpy(block, data, n)
            memset(block + n, 0, 16 - n)
            vx_compress_short(h, vx_load64(block), vx_load64(block + 8), counter + n)
        else:
            for i in range(8):
                h[i] = self._keyed[i]
            while n > 128:
                counter += 128
                vx_compress(h, data, counter, False)
                data += 128
                n -= 128
            memcpy(block, data, n)
            memset(block + n, 0, 128 - n)
            vx_compress(h, block, counter + n, True)
        for i in range(16):
            out[i] = <uint8_t>(h[i >> 3] >> (8 * (i & 7)))

    def digest(self, bytes data):
        """The 16-byte digest of ``data`` (for tests: it must equal hashlib's)."""
        cdef uint8_t out[16]
        self.digest_into(<const uint8_t*>PyBytes_AS_STRING(data), len(data), out)
        return PyBytes_FromStringAndSize(<char*>out, 16)


cdef class _Keys:
    """The compiled stand-in for ``_keys.KeyMaker`` where it is hot: ids and pseudonyms."""

    cdef _Mac _by_id
    cdef _Mac _pseudonym
    cdef object _maker

    def __init__(self, object maker):
        self._maker = maker
        self._by_id = _Mac(maker.mac_key, b"voxloop-id")
        self._pseudonym = _Mac(maker.mac_key, b"voxloop-who")

    cdef bytes foreign_id_key(self, str event_id):
        cdef uint8_t out[16]
        cdef bytes data = event_id.encode()
        self._by_id.digest_into(<const uint8_t*>PyBytes_AS_STRING(data), len(data), out)
        out[6] = (out[6] & 0x0F) | 0x80
        out[8] = (out[8] & 0x3F) | 0x80
        return PyBytes_FromStringAndSize(<char*>out, 16)

    cdef str pseudonym(self, str value):
        cdef uint8_t out[16]
        cdef uint8_t* text
        cdef Py_ssize_t i
        cdef bytes data
        if PyUnicode_IS_COMPACT_ASCII(value):  # its UTF-8 is its storage: no copy to encode
            self._pseudonym.digest_into(
                <const uint8_t*>PyUnicode_DATA(value), PyUnicode_GET_LENGTH(value), out
            )
        else:
            data = value.encode()
            self._pseudonym.digest_into(<const uint8_t*>PyBytes_AS_STRING(data), len(data), out)
        hexdigest = PyUnicode_New(32, 127)
        text = PyUnicode_1BYTE_DATA(hexdigest)
        for i in range(16):
            memcpy(text + 2 * i, &_HEX_PAIRS[out[i]], 2)
        return hexdigest


cdef dict _keys_by_secret = {}


cdef _Keys _keys_for(bytes secret):
    found = _keys_by_secret.get(secret)
    if found is None:
        if len(_keys_by_secret) >= 1024:
            _keys_by_secret.clear()
        found = _keys_by_secret[secret] = _Keys(key_maker(secret))
    return <_Keys>found


cdef bint _form_ok(str form):
    cdef Py_ssize_t n = len(form)
    cdef Py_UCS4 c
    if n == 0 or n > _MAX_FORM:
        return False
    for c in form:
        if not (
            (0x61 <= c <= 0x7A) or (0x41 <= c <= 0x5A) or (0x30 <= c <= 0x39)
            or c == 0x2E or c == 0x5F or c == 0x2D
        ):
            return False
    return True


cdef bint _locale_ok(str tag):
    """``[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*``, at most MAX_LOCALE_CHARS long."""
    cdef Py_ssize_t n = len(tag), run = 0
    cdef bint first = True
    cdef Py_UCS4 c
    if n > _MAX_LOCALE:
        return False
    for c in tag:
        if c == 0x2D:
            if (first and run < 2) or run == 0:
                return False
            first = False
            run = 0
        elif (0x61 <= c <= 0x7A) or (0x41 <= c <= 0x5A) or (not first and 0x30 <= c <= 0x39):
            run += 1
            if run > 8:
                return False
        else:
            return False
    return run >= 2 if first else run >= 1


cdef extern from *:
    """
    /* An exact int's value into *out, and 1, where it fits in a long long; else 0. Ints of one
       or two digits (every score and millisecond timestamp) are read in place, without the
       general conversion's call. */
    static inline int vx_int_value(PyObject *o, long long *out) {
        int overflow;
    #if defined(PYPY_VERSION) || defined(Py_LIMITED_API)
    #elif PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
            *out = (long long)PyUnstable_Long_CompactValue((PyLongObject *)o);
            return 1;
        }
    #else
        const digit *d = ((PyLongObject *)o)->ob_digit;
        switch (Py_SIZE(o)) {
            case 0: *out = 0; return 1;
            case 1: *out = (long long)d[0]; return 1;
            case -1: *out = -(long long)d[0]; return 1;
            case 2: *out = ((long long)d[1] << PyLong_SHIFT) | (long long)d[0]; return 1;
            case -2: *out = -(((long long)d[1] << PyLong_SHIFT) | (long long)d[0]); return 1;
        }
    #endif
        *out = PyLong_AsLongLongAndOverflow(o, &overflow);
        return overflow == 0;
    }
    """
    bint vx_int_value(PyObject* o, long long* out) noexcept


cdef inline bint _within(object value, long long low, long long high) except -1:
    """``low <= value <= high``, in C for the ints msgspec gives (of any size)."""
    cdef long long v
    if type(value) is int:
        return vx_int_value(<PyObject*>value, &v) and low <= v <= high
    return low <= value <= high


cdef inline int64_t _floor_mod(int64_t a, int64_t b):
    cdef int64_t r = a % b
    return r + b if r < 0 else r


cdef int64_t _days_from_civil(int64_t y, int64_t m, int64_t d):
    # Howard Hinnant's days_from_civil: days since 1970-01-01 in the proleptic Gregorian calendar.
    cdef int64_t era, yoe, doy, doe
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef object _epoch_ms(object ts):
    """Epoch milliseconds of an int or an aware datetime, floored like the reference."""
    cdef int64_t seconds, micros, offset_us = 0
    if ts is None or type(ts) is int:
        return ts
    if not PyDateTime_Check(ts):
        return ts  # msgspec only ever gives int, datetime or None
    seconds = (
        _days_from_civil(datetime_year(ts), datetime_month(ts), datetime_day(ts)) * 86400
        + datetime_hour(ts) * 3600 + datetime_minute(ts) * 60 + datetime_second(ts)
    )
    micros = seconds * 1000000 + datetime_microsecond(ts)
    tz = datetime_tzinfo(ts)
    if tz is not _UTC:
        offset = ts.utcoffset()
        offset_us = (
            (<int64_t>timedelta_days(offset) * 86400 + timedelta_seconds(offset)) * 1000000
            + timedelta_microseconds(offset)
        )
    micros -= offset_us
    return (micros - _floor_mod(micros, 1000)) // 1000


cdef object _clean_comment(object comment):
    """Remove control characters (not newline or tab), then NFC; empty means no comment.

    One pass over the text finds both control characters and any character that might change
    under NFC; only texts with the latter pay for ``unicodedata`` (most comments don't).
    """
    cdef str text
    if comment is None:
        return None
    text = <str>comment
    cdef unsigned char seen = _scan(text)
    if seen & _CONTROL:
        text = CONTROL_CHARACTERS.sub("", text)
    if seen & _MAY_CHANGE and not _is_normalized("NFC", text):
        text = _normalize("NFC", text)
    if len(text) > _MAX_COMMENT:
        raise _RefusedError(
            "comment",
            f"comment must be at most {MAX_COMMENT_CHARS} characters after normalisation,"
            f" got {len(text)}",
        )
    return text if text else None


class _RefusedError(Exception):
    def __init__(self, field, error):
        super().__init__(error)
        self.field = field
        self.error = error


cdef class _Unkeyed:
    """The keys of one request's events without ``id``; see ``_pipeline_py._RequestKeys``."""

    cdef object _maker
    cdef object _nonce
    cdef int64_t _now_ms
    cdef dict _occurrences

    def __init__(self, object maker, int64_t now_ms, object nonce):
        if nonce is not None and len(nonce) < MIN_NONCE_BYTES:
            raise ValueError(f"a nonce must be at least {MIN_NONCE_BYTES} bytes")
        self._maker = maker
        self._now_ms = now_ms
        self._nonce = nonce
        self._occurrences = {}

    cdef object content_key(self, tuple content, object client_ts):
        first = self._maker.content_key(content, client_ts)
        found = self._occurrences.get(first)
        cdef Py_ssize_t occurrence = 0 if found is None else <Py_ssize_t>found
        self._occurrences[first] = occurrence + 1
        if occurrence == 0:
            return first
        return self._maker.content_key(content, client_ts, occurrence)

    cdef object fresh_key(self, Py_ssize_t index):
        if self._nonce is None:
            self._nonce = os.urandom(MIN_NONCE_BYTES)
        return self._maker.fresh_key(self._nonce, index, self._now_ms)


cdef class _Request:
    """What every event of one ``validate`` call is checked against, read once a call."""

    cdef dict channels
    cdef tuple channel_names
    cdef int64_t now_ms
    # the policy's own values, of any size, as the reference reads them
    cdef object max_future
    cdef object retention
    # the bounds of the ts window where both fit in 64 bits (``window_in_c``); else a timestamp
    # is compared as the reference does, as Python ints
    cdef int64_t newest
    cdef int64_t oldest
    cdef bint window_in_c
    cdef _Keys keys
    cdef _Unkeyed unkeyed
    cdef list forms  # see _shared_form


cdef int _AHEAD = 1
cdef int _TOO_OLD = 2


cdef int _ts_check(object client_ts, _Request req) except -1:
    """0 where ``client_ts`` is in the request's window, else _AHEAD or _TOO_OLD; in C where
    both sides fit in 64 bits, as Python ints where they don't."""
    cdef long long ts
    if req.window_in_c and type(client_ts) is int:
        if vx_int_value(<PyObject*>client_ts, &ts):
            return _AHEAD if ts > req.newest else _TOO_OLD if ts < req.oldest else 0
    if client_ts > req.now_ms + req.max_future:
        return _AHEAD
    return _TOO_OLD if client_ts < req.now_ms - req.retention else 0


cdef Py_ssize_t _MAX_SHARED_FORMS = 8


cdef inline object _shared_form(_Request req, object form):
    """The first of the request's forms equal to ``form`` (most requests name a few forms):
    records of one form then share a string whose hash is computed once, and equal keys in
    ``aggregate`` compare by identity."""
    cdef list forms = req.forms
    cdef Py_ssize_t k, n = len(forms)
    if type(form) is not str:
        return form
    for k in range(n):
        known = <object>PyList_GET_ITEM(forms, k)
        if _same_text(known, form):
            return known
    if n < _MAX_SHARED_FORMS:
        forms.append(form)
    return form


cdef object _to_record(object event, Py_ssize_t index, _Request req):
    if type(event) is not Event:  # a subclass or look-alike: take the slow, general road
        event = Event(**{name: getattr(event, name) for name in Event.__struct_fields__})
    cdef object event_id = _slot(event, _E_ID)
    cdef object channel = _slot(event, _E_CHANNEL)
    cdef str form = _slot(event, _E_FORM)
    cdef object metric = _slot(event, _E_METRIC)
    cdef object score = _slot(event, _E_SCORE)
    cdef object locale
    cdef object client_ts, comment, respondent, vote_key
    cdef Py_ssize_t at
    cdef long long low, high
    cdef int outside
    cdef tuple spec
    cdef _Keys keys = req.keys
    key = None
    if event_id is not None:
        key = _uuid7_bytes(<str>event_id)  # a UUIDv7 is a valid id: no second scan
        if key is None and not _id_ok(<str>event_id):
            raise _RefusedError("id", _ID_RULE)
    at = _index_of(channel, req.channel_names)
    if at >= 0:
        channel = <object>PyTuple_GET_ITEM(req.channel_names, at)
    else:
        canonical = req.channels.get(channel)
        if canonical is None:
            allowed = ", ".join(sorted(req.channels))
            raise _RefusedError("channel", f"unknown channel {channel!r}; allowed: {allowed}")
        channel = canonical
    if not _form_ok(form):
        raise _RefusedError("form", _FORM_RULE)
    form = _shared_form(req, form)
    at = _index_of(metric, _METRIC_NAMES_SCANNED)
    if at >= 0:
        metric = <object>PyTuple_GET_ITEM(_METRIC_NAMES_SCANNED, at)
        low = _metric_low[at]
        high = _metric_high[at]
    else:
        found = _METRICS.get(metric)
        if found is None:
            raise _RefusedError(
                "metric", f"unknown metric {metric!r}; expected one of {_METRIC_NAMES}"
            )
        spec = <tuple>found
        metric = spec[0]
        low = spec[1]
        high = spec[2]
    if not _within(score, low, high):
        raise _RefusedError("score", f"{metric} score must be {low}..{high}, got {score}")
    client_ts = _epoch_ms(_slot(event, _E_TS))
    if client_ts is not None:
        outside = _ts_check(client_ts, req)
        if outside == _AHEAD:
            ahead = req.max_future // 1000
            raise _RefusedError("ts", f"ts is more than {ahead} s ahead of the gateway's clock")
        if outside == _TOO_OLD:
            days = req.retention // 86400000
            raise _RefusedError("ts", f"ts is older than the retention window of {days} days")
    comment = _clean_comment(_slot(event, _E_COMMENT))
    locale = _slot(event, _E_LOCALE)
    if locale is not None and not _locale_ok(<str>locale):
        raise _RefusedError("locale", _LOCALE_RULE)
    respondent = _slot(event, _E_RESPONDENT)
    vote_key = _slot(event, _E_VOTE_KEY)
    tags = _slot(event, _E_TAGS)
    meta = _slot(event, _E_META)
    if event_id is not None:
        if key is None:
            key = keys.foreign_id_key(<str>event_id)
    elif client_ts is None:
        key = req.unkeyed.fresh_key(index)
    else:
        key = req.unkeyed.content_key(
            (channel, form, metric, score, comment, respondent, vote_key, client_ts, locale,
             tags, meta),
            client_ts,
        )
    return Record(
        key,
        event_id,
        req.now_ms if client_ts is None else client_ts,
        channel,
        form,
        metric,
        score,
        comment,
        None if respondent is None else keys.pseudonym(<str>respondent),
        None if vote_key is None else keys.pseudonym(<str>vote_key),
        locale,
        tags,
        meta,
    )


def validate(events, policy, long long now_ms, bytes secret, nonce=None):
    """Apply the contract's field rules; see ``_pipeline_py.validate``."""
    cdef list records = []
    cdef list rejections = []
    cdef list todo = events if type(events) is list else list(events)
    cdef Py_ssize_t index = 0, count = len(todo)
    cdef _Request req = _Request.__new__(_Request)
    cdef PyObject* event_type = <PyObject*>Event
    cdef tuple channels = _canonical_channels(policy.channels)
    req.channels = <dict>channels[0]
    req.channel_names = <tuple>channels[1]
    req.now_ms = now_ms
    req.max_future = policy.max_future_ms
    req.retention = policy.retention_ms
    req.window_in_c = type(req.max_future) is int and type(req.retention) is int
    if req.window_in_c:
        newest = now_ms + req.max_future
        oldest = now_ms - req.retention
        req.window_in_c = INT64_MIN <= newest <= INT64_MAX and INT64_MIN <= oldest <= INT64_MAX
        if req.window_in_c:
            req.newest = newest
            req.oldest = oldest
    req.keys = _keys_for(secret)
    req.unkeyed = _Unkeyed(req.keys._maker, now_ms, nonce)
    req.forms = []
    while index < count:
        # One ``try`` for the whole run of events up to a refused one, not one per event.
        try:
            while index < count:
                # Events decoded a while ago are out of the cache: ask for the next ones early.
                if index + 4 < count:
                    vx_prefetch_event(PyList_GET_ITEM(todo, index + 4))
                if index + 2 < count:
                    vx_prefetch_fields(PyList_GET_ITEM(todo, index + 2), event_type, _E_READ, 8)
                if index + 1 < count:
                    vx_prefetch_comment(PyList_GET_ITEM(todo, index + 1), event_type, _E_COMMENT)
                event = <object>PyList_GET_ITEM(todo, index)
                if event is not None:
                    records.append(_to_record(event, index, req))
                index += 1
        except _RefusedError as refused:
            rejections.append(Rejection(index, refused.field, refused.error))
            index += 1
    return records, rejections


cdef extern from *:
    """
    /* A key of a batch in ``DedupWindow.split``'s table, and its hash. */
    typedef struct {
        PyObject *key;
        Py_hash_t hash;
    } vx_slot;
    """
    ctypedef struct vx_slot:
        PyObject* key
        Py_hash_t hash


cdef enum:
    _STACK_SLOTS = 512  # a table for batches of up to 256 records lies on the stack


cdef class DedupWindow:
    """A bounded "seen recently?" set of dedup keys; see ``_pipeline_py.DedupWindow``.

    The keys in the order remembered are a list read from ``_head`` on (a queue that pops by
    moving ``_head``, compacted now and then), which costs less per key than a deque's methods.
    """

    cdef readonly Py_ssize_t max_entries
    cdef readonly int64_t max_age_ms
    cdef dict _remembered
    cdef list _order
    cdef Py_ssize_t _head

    def __init__(self, Py_ssize_t max_entries=1_000_000, int64_t max_age_ms=7 * 86_400_000):
        if max_entries < 1 or max_age_ms < 1:
            raise ValueError("a dedup window needs max_entries >= 1 and max_age_ms >= 1")
        self.max_entries = max_entries
        self.max_age_ms = max_age_ms
        self._remembered = {}
        self._order = []
        self._head = 0

    def __len__(self):
        return len(self._remembered)

    cdef inline bint _seen(self, object key, int64_t now_ms) except -1:
        at = self._remembered.get(key)
        return at is not None and now_ms - <int64_t>at < self.max_age_ms

    def seen(self, bytes key, int64_t now_ms):
        """Whether ``key`` was remembered less than ``max_age_ms`` before ``now_ms``."""
        return self._seen(key, now_ms)

    def split(self, records, int64_t now_ms):
        """Drop records seen recently or earlier in the same batch.

        The batch's keys go into a table of its own on the stack (open addressing on the keys'
        hashes, which bytes keep once computed), not into a set that would grow several times.
        """
        cdef list todo = records if type(records) is list else list(records)
        cdef list fresh = []
        cdef list held = []  # keys of records that are not Records, kept alive for the table
        cdef Py_ssize_t duplicates = 0, count = len(todo), size = 16, i, at
        cdef Py_hash_t hashed
        cdef bint any_remembered = PyDict_GET_SIZE(self._remembered) != 0, known
        cdef vx_slot on_stack[_STACK_SLOTS]
        cdef vx_slot* table = on_stack
        while size < 2 * count:
            size <<= 1
        if size > _STACK_SLOTS:
            table = <vx_slot*>PyMem_Malloc(size * sizeof(vx_slot))
            if table == NULL:
                raise MemoryError()
        memset(table, 0, size * sizeof(vx_slot))
        try:
            for i in range(count):
                record = <object>PyList_GET_ITEM(todo, i)
                if type(record) is Record:
                    key = _slot(record, _R_KEY)
                else:
                    key = record.key
                    held.append(key)
                if any_remembered and self._seen(key, now_ms):
                    duplicates += 1
                    continue
                hashed = PyObject_Hash(key)
                at = hashed & (size - 1)
                known = False
                while table[at].key != NULL:
                    if table[at].hash == hashed and (
                        table[at].key == <PyObject*>key
                        or PyObject_RichCompareBool(<object>table[at].key, key, Py_EQ)
                    ):
                        known = True
                        break
                    at = (at + 1) & (size - 1)
                if known:
                    duplicates += 1
                else:
                    table[at].key = <PyObject*>key
                    table[at].hash = hashed
                    fresh.append(record)
        finally:
            if table != on_stack:
                PyMem_Free(table)
        return fresh, duplicates

    cdef inline object _pop_oldest(self):
        oldest = <object>PyList_GET_ITEM(self._order, self._head)
        self._head += 1
        return oldest

    def remember(self, records, int64_t now_ms):
        """Add committed records' keys; a key already held keeps its first time."""
        cdef dict remembered = self._remembered
        cdef list order = self._order
        cdef Py_ssize_t size
        cdef object at = now_ms  # one int for every key of the call
        while self._head < len(order):
            oldest = <object>PyList_GET_ITEM(order, self._head)
            if now_ms - <int64_t>remembered[oldest] < self.max_age_ms:
                break
            self._head += 1
            del remembered[oldest]
        if self._head > 64 and self._head * 2 > len(order):
            del order[:self._head]
            self._head = 0
        for record in records:
            key = _key_of(record)
            size = PyDict_GET_SIZE(remembered)
            if size < self.max_entries:
                PyDict_SetDefault(remembered, key, at)  # one lookup: adds the key if new
                if PyDict_GET_SIZE(remembered) != size:
                    order.append(key)
                continue
            if key in remembered:
                continue
            del remembered[self._pop_oldest()]
            remembered[key] = at
            order.append(key)

    def forget(self, keys):
        """Drop ``keys``; how many the window held. See ``_pipeline_py.DedupWindow.forget``.

        The order of remembering is rebuilt once a call without them (one pass over the window:
        erasures are rare), so that it names only keys the window holds.
        """
        cdef dict remembered = self._remembered
        cdef Py_ssize_t forgotten = 0
        for key in keys:
            if remembered.pop(key, None) is not None:
                forgotten += 1
        if forgotten:
            self._order = [key for key in self._order[self._head:] if key in remembered]
            self._head = 0
        return forgotten


def suspects(records):
    """Where in ``records`` a comment holds an "@" or a decimal digit; see ``_pipeline_py``."""
    cdef list found = []
    cdef Py_ssize_t index = 0
    for record in records:
        comment = _slot(record, _R_COMMENT) if type(record) is Record else record.comment
        if comment is not None and _marked(<str>comment):
            found.append(index)
        index += 1
    return found


cdef bint _marked(str text):
    """Whether ``text`` holds a character flagged _MARKED, read in its own storage width.

    No decimal digit lies above the flag table (the last, U+1FBF9, is below it)."""
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef uint32_t c
    if kind == PyUnicode_1BYTE_KIND:
        for i in range(n):
            if _flag_of[(<uint8_t*>data)[i]] & _MARKED:
                return True
        return False
    if kind == PyUnicode_2BYTE_KIND:
        for i in range(n):
            if _flag_of[(<uint16_t*>data)[i]] & _MARKED:
                return True
        return False
    for i in range(n):
        c = (<uint32_t*>data)[i]
        if c < _FLAGGED_UPTO and _flag_of[c] & _MARKED:
            return True
    return False


cdef extern from *:
    """
    /* A histogram of ``aggregate``'s output, found again by the identity of its key's parts,
       with the counts of this call kept in C until the end. */
    typedef struct {
        PyObject *channel;
        PyObject *form;
        PyObject *metric;
        int64_t hour;
        PyObject *counts;
        long long low;
        Py_ssize_t size;
        int64_t tally[16];
    } vx_bucket;
    static inline size_t vx_bucket_hash(PyObject *channel, PyObject *form, PyObject *metric,
                                        int64_t hour) {
        uint64_t h = (uint64_t)(uintptr_t)channel * 0x9E3779B97F4A7C15ULL
                     ^ (uint64_t)(uintptr_t)form * 0xC2B2AE3D27D4EB4FULL
                     ^ (uint64_t)(uintptr_t)metric * 0x165667B19E3779F9ULL
                     ^ (uint64_t)hour * 0x27D4EB2F165667C5ULL;
        return (size_t)(h >> 32);
    }
    """
    ctypedef struct vx_bucket:
        PyObject* channel
        PyObject* form
        PyObject* metric
        int64_t hour
        PyObject* counts
        long long low
        Py_ssize_t size
        int64_t tally[16]
    size_t vx_bucket_hash(PyObject* channel, PyObject* form, PyObject* metric,
                          int64_t hour) noexcept nogil


cdef enum:
    _TALLIED = 16  # the widest histogram counted in C (vx_bucket.tally)
    _BUCKETS = 128  # the keys of a call counted in C; more take the dict every time
    _BUCKET_SLOTS = 256


def aggregate(records):
    """Histogram deltas per (channel, form, metric, hour bucket); see ``_pipeline_py``.

    Records of one key mostly share their channel, form and metric strings (``validate`` makes
    them so): a key seen before in the call is found in a small table by those strings'
    identity and the hour, without building and hashing its tuple, and counted in C. Anything
    else (other types, scores outside the range, timestamps at the ends of 64 bits) takes the
    reference's road.
    """
    cdef dict out = {}
    cdef list held = []  # the keys of the table's buckets: their parts stay alive
    cdef int64_t hour = 0, last_hour = -1
    cdef long long ts = 0, low, high, score = 0
    cdef Py_ssize_t at, size, slot, used = 0
    cdef size_t probe = 0
    cdef bint in_c
    cdef unsigned short table[_BUCKET_SLOTS]
    cdef vx_bucket buckets[_BUCKETS]
    cdef vx_bucket* found
    cdef list counts
    cdef tuple spec
    cdef object bucket = None
    # per metric, a zeroed histogram made for a key that was there already: the next new key
    # of that metric takes it
    cdef list spares = [None] * _MAX_SCANNED
    cdef object spare
    memset(table, 0, sizeof(table))
    for record in records:
        if type(record) is Record:
            metric = _slot(record, _R_METRIC)
            ts_ms = _slot(record, _R_TS)
            channel = _slot(record, _R_CHANNEL)
            form = _slot(record, _R_FORM)
            value = _slot(record, _R_SCORE)
        else:
            metric, ts_ms, channel, form = record.metric, record.ts_ms, record.channel, record.form
            value = record.score
        in_c = False
        found = NULL
        if type(ts_ms) is int and type(value) is int:
            in_c = (
                vx_int_value(<PyObject*>ts_ms, &ts) and ts >= INT64_MIN + _HOUR
                and vx_int_value(<PyObject*>value, &score)
            )
        if in_c:
            hour = ts - _floor_mod(ts, _HOUR)
            probe = vx_bucket_hash(<PyObject*>channel, <PyObject*>form, <PyObject*>metric, hour)
            while True:
                probe &= _BUCKET_SLOTS - 1
                at = table[probe]
                if at == 0:
                    break
                found = &buckets[at - 1]
                if (
                    found.channel == <PyObject*>channel and found.form == <PyObject*>form
                    and found.metric == <PyObject*>metric and found.hour == hour
                ):
                    break
                found = NULL
                probe += 1
            if found != NULL:
                slot = score - found.low
                if 0 <= slot < found.size:
                    found.tally[slot] += 1
                    continue
        at = _index_of(metric, _METRIC_NAMES_SCANNED)  # validate's records: the first compare
        if at >= 0:
            low = _metric_low[at]
            high = _metric_high[at]
        else:
            spec = <tuple>_METRICS[metric]
            low = spec[1]
            high = spec[2]
        if in_c:
            if hour != last_hour or bucket is None:  # a batch mostly falls in one hour: share it
                bucket = hour
                last_hour = hour
        else:
            bucket = ts_ms - ts_ms % HOUR_MS
            last_hour = -1
        size = high - low + 1
        spare = <object>PyList_GET_ITEM(spares, at) if at >= 0 else None
        if spare is None:
            spare = [0] * size
        key = (channel, form, metric, bucket)
        # One hash of the key, where a get and then a set would hash it twice.
        counts = <list>PyDict_SetDefault(out, key, spare)
        if at >= 0:
            spares[at] = None if counts is spare else spare
        if not in_c:  # Python's indexing and its errors, as in the reference
            counts[value - <object>low] += 1
            continue
        slot = score - low
        if found == NULL and size <= _TALLIED and used < _BUCKETS:
            held.append(key)
            found = &buckets[used]
            used += 1
            table[probe] = <unsigned short>used
            found.channel = <PyObject*>channel
            found.form = <PyObject*>form
            found.metric = <PyObject*>metric
            found.hour = hour
            found.counts = <PyObject*>counts
            found.low = low
            found.size = size
            memset(found.tally, 0, sizeof(found.tally))
            if 0 <= slot < size:
                found.tally[slot] += 1
                continue
        if 0 <= slot < size:
            counts[slot] += 1
        else:  # Python's indexing, negative indexes included, as in the reference
            counts[<object>slot] += 1
    for at in range(used):
        found = &buckets[at]
        counts = <list>found.counts
        for slot in range(found.size):
            if found.tally[slot]:
                counts[slot] = <object>PyList_GET_ITEM(counts, slot) + found.tally[slot]
    return out
