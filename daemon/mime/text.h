/*
 * The readable side of a stored message, with GMime: its best text (the
 * first text/plain part, else the first text/html part reduced to text)
 * decoded to UTF-8 from any charset, leniently when the label is wrong; its
 * attachments (name, with RFC 2231 filename*, type, decoded size); and one
 * attachment written out. Messages are parsed from a seekable file descriptor
 * (a memfd or a file) with the parser's persistent stream, so GMime keeps
 * parts as ranges of the descriptor instead of copies: memory stays bounded
 * for a 100 MB message. Single-threaded per MimeMessage; GMime is
 * initialised once, lazily.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Text kept at most by mime_message_text(): what follows is dropped. */
#define MIME_TEXT_MAX (1024 * 1024)

typedef struct MimeMessage MimeMessage;

/* One attachment: strings malloc()ed, UTF-8. */
typedef struct MimeAttachment {
        char *name;    /* NULL when the part names none */
        char *type;    /* "type/subtype", lowercase */
        uint64_t size; /* decoded bytes */
} MimeAttachment;

/*
 * Parses the message read from fd (seekable, read from its current offset);
 * fd stays the caller's and must stay open until mime_message_free(). Returns
 * 0, MIME_TEXT_E_PARSE (1) when GMime finds no message, or a negative errno.
 */
#define MIME_TEXT_E_PARSE 1
int mime_message_new_fd(int fd, MimeMessage **msgp);

/* The same from n bytes in memory (copied). */
int mime_message_new_data(const void *data, size_t n, MimeMessage **msgp);

/* Frees msg; accepts NULL, returns NULL. */
MimeMessage *mime_message_free(MimeMessage *msg);

/*
 * The best text of msg as a malloc()ed NUL-terminated UTF-8 string with LF
 * line ends, at most max bytes (cut on a character boundary), in *textp
 * (NULL and 0 when the message has no text part) and its length in *lenp.
 * Returns 0 or a negative errno.
 */
int mime_message_text(MimeMessage *msg, size_t max, char **textp, size_t *lenp);

/* Writes the whole best text to fd, decoded the same way but streamed, not capped.
 * Returns 0, MIME_TEXT_E_NONE (2) when there is no text part, or a negative errno. */
#define MIME_TEXT_E_NONE 2
int mime_message_write_text(MimeMessage *msg, int fd);

/* The attachments of msg in document order, *n_attp of them, in a malloc()ed
 * array (mime_attachments_free()). Returns 0 or a negative errno. */
int mime_message_attachments(MimeMessage *msg, MimeAttachment **attp, size_t *n_attp);

/* Whether msg has an attachment (what mime_message_attachments() would list), without
 * decoding any: cheap. */
bool mime_message_has_attachment(MimeMessage *msg);

/* Frees an array from mime_message_attachments(). */
void mime_attachments_free(MimeAttachment *att, size_t n_att);

/* Writes attachment index (0-based, as listed) decoded to fd, streamed.
 * Returns 0, MIME_TEXT_E_NONE when there is no such attachment, or a negative errno. */
int mime_message_write_attachment(MimeMessage *msg, size_t index, int fd);

/* Reduces HTML in[0..n) to text (tags dropped, script/style skipped, block
 * ends as line ends, entities decoded) into a malloc()ed string. Returns 0 or -ENOMEM. */
int mime_html_to_text(const char *in, size_t n, char **textp, size_t *lenp);
