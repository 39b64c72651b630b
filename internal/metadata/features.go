package metadata

import (
	"fmt"
	"maps"
)

// FeatureLevel returns the finalized level of the named feature; 0 if it is not finalized.
func (img *Image) FeatureLevel(name string) int16 {
	return img.Features[name]
}

func (img *Image) applyFeatureLevel(r FeatureLevel) (*Image, error) {
	if r.Name == "" {
		return img, fmt.Errorf("%w: empty feature name", ErrInvalidRecord)
	}
	if r.Level < 0 {
		return img, fmt.Errorf("%w: feature %s level %d", ErrInvalidRecord, r.Name, r.Level)
	}
	next := img.clone()
	next.Features = maps.Clone(img.Features)
	if next.Features == nil {
		next.Features = make(map[string]int16, 1)
	}
	if r.Level == 0 {
		delete(next.Features, r.Name)
	} else {
		next.Features[r.Name] = r.Level
	}
	return next, nil
}

// checkFeatures checks decoded finalized features: names non-empty, levels at least 1 (a
// feature at level 0 is not finalized and so never stored).
func checkFeatures(features map[string]int16) error {
	for name, level := range features {
		if name == "" || level < 1 {
			return fmt.Errorf("metadata: decode image: feature %q at level %d", name, level)
		}
	}
	return nil
}
