/*
 * libFuzzer target for message preparation and the address-list parser.
 * Input layout: byte 0 holds flags (bit 0: an envelope sender is given,
 * bit 1: recipients are given), the rest is the message. Checked on every
 * accepted message: only CRLF line ends, no line over 998 octets, no Bcc
 * field left in the header, a non-empty envelope of valid-looking addresses,
 * and preparing the result again with its own envelope changes nothing. The
 * message is also parsed as one address-list header value. Any violation
 * aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/smtp/prepare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_output(const SmtpMessage *m) {
        size_t col = 0;
        bool in_header = true, bol = true;

        if (strlen(m->data) != m->size || m->n_rcpts == 0 || !strchr(m->mail_from, '@'))
                abort();
        for (size_t i = 0; i < m->n_rcpts; i++)
                if (!strchr(m->rcpts[i], '@'))
                        abort();
        for (size_t i = 0; i < m->size; i++) {
                char c = m->data[i];

                if (bol && in_header && strncasecmp(m->data + i, "Bcc:", 4) == 0)
                        abort();
                if (bol && c == '\r')
                        in_header = false;
                bol = false;
                if (c == '\r') {
                        if (i + 1 >= m->size || m->data[i + 1] != '\n')
                                abort();
                        i++;
                        col = 0;
                        bol = true;
                } else if (c == '\n' || ++col > SMTP_PREPARE_LINE_MAX) {
                        abort();
                }
        }
        if (m->size < 2 || m->data[m->size - 1] != '\n')
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const given[] = {"z@example.org", "y@example.org"};
        SmtpPrepareOptions o = {.now = 1795710000, .unique = "fuzz", .utc = true};
        SmtpMessage *m = NULL, *again = NULL;
        char *err = NULL, *value, **addrs = NULL;
        size_t n_addrs = 0;
        int r;

        if (size < 1)
                return 0;
        if (data[0] & 1)
                o.from = "x@example.org";
        if (data[0] & 2)
                o.rcpts = given, o.n_rcpts = 2;
        r = smtp_message_prepare((const char *)data + 1, size - 1, &o, &m, &err);
        if (r < 0)
                abort(); /* only -ENOMEM is negative */
        if (r > 0 && (m || !err))
                abort();
        if (r == 0) {
                SmtpPrepareOptions o2 = {.from = m->mail_from,
                                         .rcpts = (const char *const *)m->rcpts,
                                         .n_rcpts = m->n_rcpts,
                                         .now = 1,
                                         .unique = "other"};

                check_output(m);
                /* Prepared once is prepared for good: the outbox relies on it when it reads a body back. */
                if (smtp_message_prepare(m->data, m->size, &o2, &again, NULL) != 0 || again->size != m->size ||
                    memcmp(again->data, m->data, m->size) != 0 || again->needs_8bitmime != m->needs_8bitmime ||
                    again->needs_smtputf8 != m->needs_smtputf8)
                        abort();
        }
        smtp_message_free(again);
        smtp_message_free(m);
        free(err);

        value = strndup((const char *)data + 1, size - 1);
        if (!value)
                abort();
        err = NULL;
        r = smtp_address_list_parse(value, &addrs, &n_addrs, &err);
        if (r < 0 || (r > 0 && !err))
                abort();
        for (size_t i = 0; i < n_addrs; i++)
                if (!strchr(addrs[i], '@') || strchr(addrs[i], ' ') == addrs[i])
                        abort();
        smtp_address_list_free(addrs, n_addrs);
        free(err);
        free(value);
        return 0;
}
