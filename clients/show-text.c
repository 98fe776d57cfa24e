/*
 * `tegami show` without --raw (see clients/show-text.h): a thin front on
 * daemon/mime/text.c, which parses the message from the file descriptor
 * GetMessage handed over (a seekable memfd, so parts stay ranges of it) and
 * streams the chosen part, decoded, to the caller's descriptor.
 */
#include <errno.h>
#include <unistd.h>

#include "clients/show-text.h"

/* Parses the message in fd from its start. Returns 0, 1 when it is not MIME, or a negative errno. */
static int parse(int fd, MimeMessage **msgp) {
        int r;

        *msgp = NULL;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        r = mime_message_new_fd(fd, msgp);
        return r == MIME_TEXT_E_PARSE ? 1 : r;
}

int show_text_body(int fd) {
        MimeMessage *msg = NULL;
        int r;

        r = parse(fd, &msg);
        if (r != 0)
                return r;
        r = mime_message_write_text(msg, STDOUT_FILENO);
        mime_message_free(msg);
        return r == MIME_TEXT_E_NONE ? 1 : r;
}

int show_attachments(int fd, MimeAttachment **attp, size_t *n_attp) {
        MimeMessage *msg = NULL;
        int r;

        *attp = NULL;
        *n_attp = 0;
        r = parse(fd, &msg);
        if (r != 0)
                return r < 0 ? r : 0;
        r = mime_message_attachments(msg, attp, n_attp);
        mime_message_free(msg);
        return r;
}

int show_attachment_write(int fd, size_t index, int out) {
        MimeMessage *msg = NULL;
        int r;

        r = parse(fd, &msg);
        if (r != 0)
                return r;
        r = mime_message_write_attachment(msg, index, out);
        mime_message_free(msg);
        return r == MIME_TEXT_E_NONE ? 1 : r;
}
