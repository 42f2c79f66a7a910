/* tern.h - the public header of lib/: the base runtime every module links.
 * No mail logic lives here. */
#ifndef TERN_H
#define TERN_H
#include "buf.h"
#include "log.h"
#include "conf.h"
#include "util.h"
#include "net.h"
#include "pool.h"
#include "dns.h"
#include "line.h"

#define TERN_VERSION "0.1.0"

#endif
