/*
 * The readable text of a message for `tegami show`: the first text/plain part
 * (else the first text part), its transfer encoding undone and its charset
 * converted to UTF-8, with GMime. Single-threaded.
 */
#pragma once

/* Writes the text of the message read from fd (seekable, at offset 0) to
 * standard output. Returns 0, 1 when the message has no text part (nothing
 * written), or a negative errno. fd stays the caller's. */
int show_text_body(int fd);
