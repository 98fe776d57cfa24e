/*
 * Modified UTF-7 (RFC 3501 §5.1.3), the encoding of IMAP mailbox names when
 * UTF8=ACCEPT is not enabled. Pure functions, strict both ways: what the
 * server sends that the RFC forbids is refused rather than guessed at.
 */
#pragma once

#include <stddef.h>

/*
 * Decodes the mailbox name s[0..len) into a malloc()ed UTF-8 string. Returns
 * 0, -EINVAL when s is not valid modified UTF-7 (8-bit or control bytes, an
 * unterminated or empty shift, bad base64, non-zero padding bits, a lone
 * surrogate, a shifted printable ASCII character, two adjacent shifts, or a
 * decoded NUL), or -ENOMEM.
 */
int imap_mutf7_decode(const char *s, size_t len, char **retp);

/*
 * Encodes the UTF-8 string s into malloc()ed modified UTF-7. Returns 0,
 * -EINVAL when s is not valid UTF-8 (overlong forms, surrogates, code points
 * above U+10FFFF, control characters), or -ENOMEM.
 */
int imap_mutf7_encode(const char *s, char **retp);
