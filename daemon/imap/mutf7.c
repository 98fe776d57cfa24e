/*
 * Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3): printable US-ASCII
 * stands for itself except "&", written "&-"; every other run of characters
 * is UTF-16BE in modified base64 ("," for "/", no padding) between "&" and
 * "-". Both directions build the result in a growing heap buffer; nothing
 * here does I/O or keeps state between calls.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/mutf7.h"
#include "util/macro.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == ',')
                return 63;
        return -1;
}

/* Appends the UTF-8 form of the code point cp (valid, not NUL) to out. */
static size_t put_utf8(char *out, uint32_t cp) {
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xc0 | (cp >> 6));
                out[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xe0 | (cp >> 12));
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

int imap_mutf7_decode(const char *s, size_t len, char **retp) {
        /* Each input byte yields at most 4 output bytes (a shifted 16-bit unit
         * takes 8/3 input bytes and gives at most 3 bytes, a pair 4). */
        _cleanup_free_ char *out = NULL;
        size_t o = 0, i = 0;
        bool after_shift = false; /* the last thing read was a non-empty shift */

        if (len > (SIZE_MAX - 1) / 4)
                return -EINVAL;
        out = malloc(len * 4 + 1);
        if (!out)
                return -ENOMEM;

        while (i < len) {
                unsigned char c = (unsigned char)s[i];
                uint32_t bits = 0, high = 0;
                unsigned n_bits = 0;
                size_t start;

                if (c < 0x20 || c > 0x7e)
                        return -EINVAL;
                if (c != '&') {
                        out[o++] = (char)c;
                        after_shift = false;
                        i++;
                        continue;
                }
                i++;
                if (i < len && s[i] == '-') { /* "&-" is "&" */
                        out[o++] = '&';
                        after_shift = false;
                        i++;
                        continue;
                }
                /* "&...-&...-" must have been one shift. */
                if (after_shift)
                        return -EINVAL;
                start = i;
                for (;; i++) {
                        int v;

                        if (i >= len)
                                return -EINVAL; /* unterminated */
                        if (s[i] == '-')
                                break;
                        v = b64_value((unsigned char)s[i]);
                        if (v < 0)
                                return -EINVAL;
                        bits = (bits << 6) | (uint32_t)v;
                        n_bits += 6;
                        if (n_bits >= 16) {
                                uint32_t u = (bits >> (n_bits - 16)) & 0xffff;

                                n_bits -= 16;
                                bits &= (1u << n_bits) - 1;
                                if (high) {
                                        if (u < 0xdc00 || u > 0xdfff)
                                                return -EINVAL;
                                        o += put_utf8(out + o, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
                                        high = 0;
                                } else if (u >= 0xd800 && u <= 0xdbff)
                                        high = u;
                                else if (u >= 0xdc00 && u <= 0xdfff)
                                        return -EINVAL;
                                else if (u >= 0x20 && u <= 0x7e)
                                        return -EINVAL; /* printable ASCII must stand for itself */
                                else if (u == 0)
                                        return -EINVAL;
                                else
                                        o += put_utf8(out + o, u);
                        }
                }
                /* Empty shift, dangling surrogate, a whole spare sextet, or set padding bits. */
                if (i == start || high || n_bits >= 6 || bits != 0)
                        return -EINVAL;
                i++; /* the "-" */
                after_shift = true;
        }
        out[o] = '\0';
        *retp = TAKE_PTR(out);
        return 0;
}

/* Reads one UTF-8 code point at s[*ip], strictly; -1 when invalid. */
static int32_t get_utf8(const unsigned char *s, size_t *ip) {
        size_t i = *ip;
        uint32_t cp, min;
        unsigned n;

        if (s[i] < 0x80) {
                *ip = i + 1;
                return s[i];
        }
        if ((s[i] & 0xe0) == 0xc0)
                cp = s[i] & 0x1f, n = 1, min = 0x80;
        else if ((s[i] & 0xf0) == 0xe0)
                cp = s[i] & 0x0f, n = 2, min = 0x800;
        else if ((s[i] & 0xf8) == 0xf0)
                cp = s[i] & 0x07, n = 3, min = 0x10000;
        else
                return -1;
        for (unsigned k = 1; k <= n; k++) {
                if ((s[i + k] & 0xc0) != 0x80) /* the NUL terminator stops here too */
                        return -1;
                cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return -1;
        *ip = i + n + 1;
        return (int32_t)cp;
}

int imap_mutf7_encode(const char *s, char **retp) {
        const unsigned char *u = (const unsigned char *)s;
        size_t len = strlen(s), o = 0, i = 0;
        _cleanup_free_ char *out = NULL;

        /* Worst case: every 1-byte char "&" → 2; a 2-byte char alone → "&" + 3 + "-" = 5;
         * a 4-byte char → 2 units = 6 sextets + 2. So 3 bytes out per byte in, plus 2. */
        if (len > (SIZE_MAX - 3) / 3)
                return -EINVAL;
        out = malloc(len * 3 + 3);
        if (!out)
                return -ENOMEM;

        while (i < len) {
                uint32_t bits = 0;
                unsigned n_bits = 0;

                if (u[i] >= 0x20 && u[i] <= 0x7e) {
                        out[o++] = (char)u[i];
                        if (u[i] == '&')
                                out[o++] = '-';
                        i++;
                        continue;
                }
                if (u[i] < 0x20 || u[i] == 0x7f)
                        return -EINVAL;
                out[o++] = '&';
                while (i < len && !(u[i] >= 0x20 && u[i] <= 0x7e)) {
                        int32_t cp = get_utf8(u, &i);
                        uint32_t units[2];
                        unsigned n_units = 1;

                        if (cp < 0 || cp < 0x20 || cp == 0x7f)
                                return -EINVAL;
                        if (cp >= 0x10000) {
                                units[0] = 0xd800 + (((uint32_t)cp - 0x10000) >> 10);
                                units[1] = 0xdc00 + (((uint32_t)cp - 0x10000) & 0x3ff);
                                n_units = 2;
                        } else
                                units[0] = (uint32_t)cp;
                        for (unsigned k = 0; k < n_units; k++) {
                                bits = (bits << 16) | units[k];
                                n_bits += 16;
                                while (n_bits >= 6) {
                                        out[o++] = b64[(bits >> (n_bits - 6)) & 0x3f];
                                        n_bits -= 6;
                                }
                                bits &= (1u << n_bits) - 1;
                        }
                }
                if (n_bits > 0)
                        out[o++] = b64[(bits << (6 - n_bits)) & 0x3f];
                out[o++] = '-';
        }
        out[o] = '\0';
        *retp = TAKE_PTR(out);
        return 0;
}
