// Checkpoints for Troupe: include this to get CheckpointState (what a checkpoint holds) and
// CheckpointManager (atomic, versioned, verified step directories). Declares nothing itself.
#pragma once

#include "core/checkpoint_manager.h"
#include "core/checkpoint_state.h"
