// Allowed: the upper layer includes the lower one.
#include "base/util.hpp"

int top_value()
{
    return util_value() + 1;
}
