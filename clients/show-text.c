/*
 * `tegami show` without --raw (see clients/show-text.h): a thin front on
 * daemon/mime/text.c, which parses the message from the file descriptor
 * GetMessage handed over (a seekable memfd, so parts stay ranges of it) and
 * streams the chosen part, decoded to UTF-8, to standard output.
 */
#include <unistd.h>

#include "clients/show-text.h"
#include "daemon/mime/text.h"

int show_text_body(int fd) {
        MimeMessage *msg = NULL;
        int r;

        r = mime_message_new_fd(fd, &msg);
        if (r != 0)
                return r < 0 ? r : 1;
        r = mime_message_write_text(msg, STDOUT_FILENO);
        mime_message_free(msg);
        return r == MIME_TEXT_E_NONE ? 1 : r;
}
