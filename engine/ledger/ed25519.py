"""Ed25519 signing with the OpenSSL library Python's ``hashlib`` has loaded already.

A run signs one checkpoint at its end (and one each ``checkpoint_every`` events). Loading
cryptography for that maps about 8 MB more into the process, and 10-15 ms of start-up;
OpenSSL's own Ed25519 (RFC 8032, the implementation cryptography calls too) is already
in memory, since ``hashlib`` hashes with it. Its signatures are the same bytes: Ed25519
is deterministic. Where that library cannot be found (another build of Python, another
system), :func:`signer` returns None and the caller signs with cryptography.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from engine.ledger.errors import AuditKeyError

__all__ = ["OpenSSLSigner", "signer"]

#: the names OpenSSL's library goes by where hashlib linked it (3.x, then 1.1.1)
LIBRARY_NAMES = ("libcrypto.so.3", "libcrypto.so.1.1")
_NID_ED25519 = 1087  # EVP_PKEY_ED25519
_SEED, _PUBLIC, _SIGNATURE = 32, 32, 64

T = TypeVar("T")


@cache
def _library() -> Any:
    """OpenSSL's library with the calls below declared, or None (looked for once)."""
    import _hashlib  # noqa: F401  (loads OpenSSL's library: the names below find it)

    p, size, n = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    for name in LIBRARY_NAMES:
        try:
            lib = ctypes.CDLL(name)
            functions = {
                "EVP_PKEY_new_raw_private_key": (p, [n, p, ctypes.c_char_p, size]),
                "EVP_PKEY_get_raw_public_key": (n, [p, ctypes.c_char_p, ctypes.POINTER(size)]),
                "EVP_PKEY_free": (None, [p]),
                "EVP_MD_CTX_new": (p, []),
                "EVP_MD_CTX_free": (None, [p]),
                "EVP_DigestSignInit": (n, [p, p, p, p, p]),
                "EVP_DigestSign": (
                    n,
                    [p, ctypes.c_char_p, ctypes.POINTER(size), ctypes.c_char_p, size],
                ),
            }
            for function, (result, arguments) in functions.items():
                call = getattr(lib, function)
                call.restype, call.argtypes = result, arguments
        except (OSError, AttributeError):
            continue
        return lib
    return None


class OpenSSLSigner:
    """Signs with the Ed25519 key of a 32-byte seed. The key lives in OpenSSL's memory
    only while it signs."""

    __slots__ = ("_lib", "_seed", "public_raw")

    def __init__(self, lib: Any, seed: bytes) -> None:
        self._lib = lib
        self._seed = seed
        self.public_raw = self._with_key(self._public)

    def sign(self, message: bytes) -> bytes:
        return self._with_key(lambda key: self._sign(key, message))

    def _with_key(self, use: Callable[[int], T]) -> T:
        lib = self._lib
        key = lib.EVP_PKEY_new_raw_private_key(_NID_ED25519, None, self._seed, _SEED)
        if not key:
            raise AuditKeyError("OpenSSL refused the Ed25519 key")
        try:
            return use(key)
        finally:
            lib.EVP_PKEY_free(key)

    def _public(self, key: int) -> bytes:
        out = ctypes.create_string_buffer(_PUBLIC)
        length = ctypes.c_size_t(_PUBLIC)
        if self._lib.EVP_PKEY_get_raw_public_key(key, out, ctypes.byref(length)) != 1:
            raise AuditKeyError("OpenSSL gave no Ed25519 public key")
        return out.raw[: length.value]

    def _sign(self, key: int, message: bytes) -> bytes:
        lib = self._lib
        context = lib.EVP_MD_CTX_new()
        if not context:
            raise AuditKeyError("OpenSSL could not make a signing context")
        try:
            out = ctypes.create_string_buffer(_SIGNATURE)
            length = ctypes.c_size_t(_SIGNATURE)
            if (
                lib.EVP_DigestSignInit(context, None, None, None, key) != 1
                or lib.EVP_DigestSign(context, out, ctypes.byref(length), message, len(message))
                != 1
                or length.value != _SIGNATURE
            ):
                raise AuditKeyError("OpenSSL could not sign with the Ed25519 key")
            return out.raw
        finally:
            lib.EVP_MD_CTX_free(context)


def signer(seed: bytes) -> OpenSSLSigner | None:
    """A signer for the key of ``seed`` (32 bytes), or None: OpenSSL's library is not
    there to be called (sign with cryptography instead)."""
    lib = _library()
    if lib is None:
        return None
    try:
        return OpenSSLSigner(lib, seed)
    except AuditKeyError:
        return None  # cryptography decides, and says what is wrong
