// libdeflate (Debian: libdeflate-dev): whole-buffer DEFLATE and gzip, for the server's answers.
#include <libdeflate.h>
