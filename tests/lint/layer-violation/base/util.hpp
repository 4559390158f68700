// The lower layer of the fixture.
#pragma once

inline int util_value()
{
    return 2;
}
