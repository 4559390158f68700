// Deliberately wrong: the bottom layer reaches up. The layer check must name this include.
#include "top/service.hpp"

int base_value()
{
    return service_value();
}
