/* csv.h - one record of a CSV file at a time (RFC 4180 quotes), split in place.
 * Used by the readers of points (fit/points.c) and of a report's tables (`algoprog account compose`). */
#ifndef AP_CSV_H
#define AP_CSV_H

/* Splits the record at *cursor into at most max fields, writing over the text (quotes removed, fields
 * NUL-terminated) and moving *cursor past the record's line break(s). Returns the count, 0 at the
 * end of the text, -1 for an unclosed quote or more than max fields. *lines grows by the line
 * breaks passed (blank lines and breaks inside quotes included). */
int csv_record(char **cursor, char **fields, int max, int *lines);

#endif
