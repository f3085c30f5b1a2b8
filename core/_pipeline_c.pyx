# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled hot path: validate, deduplicate, aggregate, as ``_pipeline_py`` does but fast.

Same API, same results, same messages as the reference (hypothesis checks it on arbitrary input).
Speed comes from scanning strings in C, parsing UUIDv7 ids and datetimes without Python objects,
and touching each event's attributes once. Constants, errors and key hashing are imported from the
shared Python modules so that the two implementations can't drift apart.
"""

import os
import unicodedata
from collections import deque

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsLongLongAndOverflow
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
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


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
    object PyUnicode_DecodeASCII(const char*, Py_ssize_t, const char*)

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


cdef dict _canonical_channels(object channels):
    found = _channel_sets.get(channels)
    if found is None:
        if len(_channel_sets) > 64:
            _channel_sets.clear()
        found = _channel_sets[channels] = {name: name for name in channels}
    return <dict>found
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


cdef inline unsigned char _flags_at(uint32_t c, Py_ssize_t i, Py_ssize_t* mark_at,
                                    unsigned char* mark_class):
    """``c``'s flags, plus _MAY_CHANGE if it is a combining mark that directly follows a mark
    of a higher canonical class (out of canonical order, UAX #15). Characters that are not
    marks, nearly all of them, take the first branch only."""
    cdef unsigned char flags = _flag_of[c], ccc
    if flags & _COMBINING:
        ccc = _class_of[c]
        if mark_at[0] == i - 1 and mark_class[0] > ccc:
            flags |= _MAY_CHANGE
        mark_at[0] = i
        mark_class[0] = ccc
    return flags


cdef unsigned char _scan(str text):
    """The union of the flags of ``text``'s characters, read in its own storage width.

    One pass ORs the flags together; a combining mark (an Arabic vowel sign, an accent typed
    apart), a rare character even in the texts that hold some, takes a branch that checks its
    order against the mark before it. (Two passes, the second only for texts with marks, read
    most multilingual comments twice: two thirds of the core bench's hold an Arabic mark.)
    """
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(text), mark_at = -2
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef unsigned char seen = 0, mark_class = 0, flags
    cdef uint32_t c
    if kind == PyUnicode_1BYTE_KIND:  # Latin-1: no combining marks
        for i in range(n):
            seen |= _flag_of[(<uint8_t*>data)[i]]
        return seen
    if kind == PyUnicode_2BYTE_KIND:
        for i in range(n):
            c = (<uint16_t*>data)[i]
            flags = _flag_of[c]
            if flags & _COMBINING:
                flags = _flags_at(c, i, &mark_at, &mark_class)
            seen |= flags
        return seen
    for i in range(n):
        c = (<uint32_t*>data)[i]
        if c < _FLAGGED_UPTO:
            seen |= _flags_at(c, i, &mark_at, &mark_class)
        else:
            seen |= _MAY_CHANGE
    return seen


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


cdef bytes _uuid7_bytes(str event_id):
    """The 16 bytes of a canonical lowercase UUIDv7, or None if ``event_id`` is not one."""
    cdef unsigned char buf[16]
    cdef Py_ssize_t i, j = 0
    cdef int nibble, high = 0
    cdef const uint8_t* p
    if len(event_id) != 36 or PyUnicode_KIND(event_id) != PyUnicode_1BYTE_KIND:
        return None
    p = <const uint8_t*>PyUnicode_DATA(event_id)
    if p[14] != 0x37 or not (p[19] == 0x38 or p[19] == 0x39 or p[19] == 0x61 or p[19] == 0x62):
        return None
    for i in range(36):
        if i == 8 or i == 13 or i == 18 or i == 23:
            if p[i] != 0x2D:
                return None
            continue
        nibble = _HEX[p[i]]
        if nibble < 0:
            return None
        if j & 1:
            buf[j >> 1] = <unsigned char>((high << 4) | nibble)
        else:
            high = nibble
        j += 1
    return PyBytes_FromStringAndSize(<char*>buf, 16)


# --- Keyed BLAKE2b-128 (RFC 7693), bit for bit what ``_keys.KeyMaker`` gets from hashlib ---------
# hashlib's objects cost three Python calls a hash (copy, update, digest), over a microsecond a
# pseudonym; the same sums done here, from a state that has already absorbed the key block, take a
# tenth of that.

cdef const char* _HEX_DIGITS = b"0123456789abcdef"


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
    static void vx_compress(uint64_t h[8], const uint8_t *block, uint64_t counter, int last) {
        uint64_t m[16];
        int i;
        for (i = 0; i < 16; i++) m[i] = vx_load64(block + 8 * i);
        uint64_t v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6],
                 v7 = h[7], v8 = vx_iv[0], v9 = vx_iv[1], v10 = vx_iv[2], v11 = vx_iv[3],
                 v12 = vx_iv[4] ^ counter, v13 = vx_iv[5], v14 = last ? ~vx_iv[6] : vx_iv[6],
                 v15 = vx_iv[7];
        for (i = 0; i < 12; i++) {
            const uint8_t *s = vx_sigma[i];
            VX_G(v0, v4, v8, v12, m[s[0]], m[s[1]]);
            VX_G(v1, v5, v9, v13, m[s[2]], m[s[3]]);
            VX_G(v2, v6, v10, v14, m[s[4]], m[s[5]]);
            VX_G(v3, v7, v11, v15, m[s[6]], m[s[7]]);
            VX_G(v0, v5, v10, v15, m[s[8]], m[s[9]]);
            VX_G(v1, v6, v11, v12, m[s[10]], m[s[11]]);
            VX_G(v2, v7, v8, v13, m[s[12]], m[s[13]]);
            VX_G(v3, v4, v9, v14, m[s[14]], m[s[15]]);
        }
        h[0] ^= v0 ^ v8; h[1] ^= v1 ^ v9; h[2] ^= v2 ^ v10; h[3] ^= v3 ^ v11;
        h[4] ^= v4 ^ v12; h[5] ^= v5 ^ v13; h[6] ^= v6 ^ v14; h[7] ^= v7 ^ v15;
    }
    """
    const uint64_t* vx_iv
    uint64_t vx_load64(const uint8_t* p) noexcept nogil
    void vx_compress(uint64_t* h, const uint8_t* block, uint64_t counter,
                     int last) noexcept nogil


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
        else:
            for i in range(8):
                h[i] = self._keyed[i]
            while n > 128:
                counter += 128
                vx_compress(h, data, counter, False)
                data += 128
                n -= 128
            for i in range(128):
                block[i] = data[i] if i < n else 0
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
        cdef char text[32]
        cdef Py_ssize_t i
        cdef bytes data = value.encode()
        self._pseudonym.digest_into(<const uint8_t*>PyBytes_AS_STRING(data), len(data), out)
        for i in range(16):
            text[2 * i] = _HEX_DIGITS[out[i] >> 4]
            text[2 * i + 1] = _HEX_DIGITS[out[i] & 15]
        return PyUnicode_DecodeASCII(text, 32, NULL)


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


cdef inline bint _within(object value, object low, object high) except -1:
    """``low <= value <= high``, in C for the ints msgspec gives (of any size)."""
    cdef int overflow
    cdef long long v
    if type(value) is int:
        v = PyLong_AsLongLongAndOverflow(value, &overflow)
        return overflow == 0 and <long long>low <= v <= <long long>high
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


cdef object _to_record(object event, Py_ssize_t index, dict channels, int64_t now_ms,
                       int64_t max_future, int64_t retention, _Keys keys, _Unkeyed unkeyed):
    if type(event) is not Event:  # a subclass or look-alike: take the slow, general road
        event = Event(**{name: getattr(event, name) for name in Event.__struct_fields__})
    cdef object event_id = _slot(event, _E_ID)
    cdef object channel = _slot(event, _E_CHANNEL)
    cdef str form = _slot(event, _E_FORM)
    cdef object metric = _slot(event, _E_METRIC)
    cdef object score = _slot(event, _E_SCORE)
    cdef object locale
    cdef object client_ts, comment, respondent, vote_key
    cdef tuple spec
    key = None
    if event_id is not None:
        key = _uuid7_bytes(<str>event_id)  # a UUIDv7 is a valid id: no second scan
        if key is None and not _id_ok(<str>event_id):
            raise _RefusedError("id", _ID_RULE)
    canonical = channels.get(channel)
    if canonical is None:
        allowed = ", ".join(sorted(channels))
        raise _RefusedError("channel", f"unknown channel {channel!r}; allowed: {allowed}")
    channel = canonical
    if not _form_ok(form):
        raise _RefusedError("form", _FORM_RULE)
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
        if client_ts > now_ms + max_future:
            raise _RefusedError(
                "ts", f"ts is more than {max_future // 1000} s ahead of the gateway's clock"
            )
        if client_ts < now_ms - retention:
            raise _RefusedError(
                "ts", f"ts is older than the retention window of {retention // 86400000} days"
            )
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
        key = unkeyed.fresh_key(index)
    else:
        key = unkeyed.content_key(
            (channel, form, metric, score, comment, respondent, vote_key, client_ts, locale,
             tags, meta),
            client_ts,
        )
    return Record(
        key,
        event_id,
        now_ms if client_ts is None else client_ts,
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
    cdef Py_ssize_t index = 0
    cdef dict channels = _canonical_channels(policy.channels)
    cdef int64_t max_future = policy.max_future_ms
    cdef int64_t retention = policy.retention_ms
    cdef _Keys keys = _keys_for(secret)
    cdef _Unkeyed unkeyed = _Unkeyed(keys._maker, now_ms, nonce)
    for event in events:
        if event is not None:
            try:
                records.append(
                    _to_record(
                        event, index, channels, now_ms, max_future, retention, keys, unkeyed
                    )
                )
            except _RefusedError as refused:
                rejections.append(Rejection(index, refused.field, refused.error))
        index += 1
    return records, rejections


cdef class DedupWindow:
    """A bounded "seen recently?" set of dedup keys; see ``_pipeline_py.DedupWindow``."""

    cdef readonly Py_ssize_t max_entries
    cdef readonly int64_t max_age_ms
    cdef dict _remembered
    cdef object _order

    def __init__(self, Py_ssize_t max_entries=1_000_000, int64_t max_age_ms=7 * 86_400_000):
        if max_entries < 1 or max_age_ms < 1:
            raise ValueError("a dedup window needs max_entries >= 1 and max_age_ms >= 1")
        self.max_entries = max_entries
        self.max_age_ms = max_age_ms
        self._remembered = {}
        self._order = deque()

    def __len__(self):
        return len(self._remembered)

    cdef inline bint _seen(self, object key, int64_t now_ms):
        at = self._remembered.get(key)
        return at is not None and now_ms - <int64_t>at < self.max_age_ms

    def seen(self, bytes key, int64_t now_ms):
        """Whether ``key`` was remembered less than ``max_age_ms`` before ``now_ms``."""
        return self._seen(key, now_ms)

    def split(self, records, int64_t now_ms):
        """Drop records seen recently or earlier in the same batch."""
        cdef list fresh = []
        cdef set in_batch = set()
        cdef Py_ssize_t duplicates = 0
        for record in records:
            key = _key_of(record)
            if key in in_batch or self._seen(key, now_ms):
                duplicates += 1
            else:
                in_batch.add(key)
                fresh.append(record)
        return fresh, duplicates

    def remember(self, records, int64_t now_ms):
        """Add committed records' keys; a key already held keeps its first time."""
        cdef dict remembered = self._remembered
        order = self._order
        while order:
            oldest = order[0]
            if now_ms - <int64_t>remembered[oldest] < self.max_age_ms:
                break
            order.popleft()
            del remembered[oldest]
        for record in records:
            key = _key_of(record)
            if key in remembered:
                continue
            if len(remembered) >= self.max_entries:
                del remembered[order.popleft()]
            remembered[key] = now_ms
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
            self._order = deque([key for key in self._order if key in remembered])
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


def aggregate(records):
    """Histogram deltas per (channel, form, metric, hour bucket); see ``_pipeline_py``."""
    cdef dict out = {}
    cdef int64_t ts, hour, last_hour = -1
    cdef long low, score
    cdef list counts
    cdef tuple spec
    cdef object bucket = None
    for record in records:
        if type(record) is Record:
            metric = _slot(record, _R_METRIC)
            ts = _slot(record, _R_TS)
            channel = _slot(record, _R_CHANNEL)
            form = _slot(record, _R_FORM)
            score = _slot(record, _R_SCORE)
        else:
            metric, ts, channel, form = record.metric, record.ts_ms, record.channel, record.form
            score = record.score
        spec = <tuple>_METRICS[metric]
        low = spec[1]
        hour = ts - _floor_mod(ts, _HOUR)
        if hour != last_hour or bucket is None:  # a batch mostly falls in one hour: share it
            bucket = hour
            last_hour = hour
        key = (channel, form, metric, bucket)
        counts = out.get(key)
        if counts is None:
            counts = [0] * (<long>spec[2] - low + 1)
            out[key] = counts
        counts[score - low] += 1
    return out
