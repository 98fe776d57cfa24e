/*
 * libFuzzer target for the MIME decoding glue: the input is a message as a
 * server would send it. It goes through the envelope decoder, text
 * extraction (with a small cap, so the cut-on-a-character path runs), the
 * attachment list, writing every attachment and the text to /dev/null, the
 * indexer's extraction, and the HTML reducer on the raw bytes. Checks: the
 * text is valid UTF-8 within the cap, and nothing crashes or leaks.
 */
#include <assert.h>
#include <fcntl.h>
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/mime/envelope.h"
#include "daemon/mime/indexer.h"
#include "daemon/mime/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int null_fd = -1;
        MimeMessage *msg = NULL;
        MimeAttachment *att = NULL;
        StoreEnvelope env = {};
        size_t n_att = 0, len;
        char *text = NULL;
        bool has_att;

        if (null_fd < 0)
                null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (mime_envelope_parse((const char *)data, size, &env) == 0)
                mime_envelope_clear(&env);
        if (mime_message_new_data(data, size, &msg) == 0) {
                if (mime_message_text(msg, 64, &text, &len) == 0 && text) {
                        assert(len <= 64 && g_utf8_validate(text, (gssize)len, NULL));
                        free(text);
                }
                (void)mime_message_write_text(msg, null_fd);
                if (mime_message_attachments(msg, &att, &n_att) == 0) {
                        for (size_t i = 0; i < n_att; i++)
                                (void)mime_message_write_attachment(msg, i, null_fd);
                        mime_attachments_free(att, n_att);
                }
                mime_message_free(msg);
        }
        if (mime_indexer_extract(data, size, &text, &has_att) == 0)
                free(text);
        if (mime_html_to_text((const char *)data, size, &text, &len) == 0)
                free(text);
        return 0;
}
