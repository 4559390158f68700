// The upper layer of the fixture; base/wrong_way.cpp includes it, which the layer table forbids.
#pragma once

inline int service_value()
{
    return 1;
}
