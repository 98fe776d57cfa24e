/*
 * The readable side of a message for `tegami show`, with GMime
 * (daemon/mime/text.h): its text — the first text/plain part (else the first
 * text part), its transfer encoding undone and its charset converted to
 * UTF-8 — and its attachments, listed or one written out decoded. Each call
 * parses the message anew from fd (the seekable memfd GetMessage handed
 * over, from offset 0); fd stays the caller's. Single-threaded.
 */
#pragma once

#include <stddef.h>

#include "daemon/mime/text.h"

/* Writes the text of the message to standard output. Returns 0, 1 when the
 * message has no text part (nothing written), or a negative errno. */
int show_text_body(int fd);

/* The attachments of the message in document order (mime_attachments_free());
 * none when it does not parse as MIME. Returns 0 or a negative errno. */
int show_attachments(int fd, MimeAttachment **attp, size_t *n_attp);

/* Writes attachment index (0-based, in the order show_attachments() lists)
 * decoded to out. Returns 0, 1 when there is no such attachment, or a
 * negative errno. */
int show_attachment_write(int fd, size_t index, int out);
