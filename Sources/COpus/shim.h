#include <opus/opus.h>
#include <opus/opus_defines.h>
