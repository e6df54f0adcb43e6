#pragma once
// The study's analysis of its cross-validation runs: per arm and label fraction, AUROC across folds
// x seeds; paired against the baseline arm and each further "compare" pair on the same images
// (fold-paired differences; DeLong's test and a grouped paired bootstrap on the out-of-fold
// scores); and the verdict per fraction, Bonferroni-adjusted for the arms compared.

#include <nlohmann/json.hpp>

#include "wristssl/study/config.h"
#include "wristssl/study/cross_validation.h"

namespace wristssl::study {

/// One row per fraction and arm (in that order): "auroc" (mean over folds x seeds, 95% t-interval
/// clipped to [0, 1]), "fold_paired_difference" against the baseline, "pooled" (per seed:
/// out-of-fold AUROC, DeLong and the grouped bootstrap against the baseline) and "seconds".
nlohmann::json arm_rows(const StudyConfig& config, const CvResults& results);

/// The same paired figures for each further pair the config's "compare" names, per fraction.
nlohmann::json comparisons(const StudyConfig& config, const CvResults& results);

/// Per fraction, the best arm by mean AUROC against the baseline: picking the best of m arms and
/// then testing it at 5% would find a "win" more often than 5% of the time when none is real, so
/// the verdict's interval and p-value are Bonferroni-adjusted for the m arms compared (95%
/// family-wise); the unadjusted ones stay beside.
nlohmann::json verdicts(const StudyConfig& config, const nlohmann::json& rows);

}  // namespace wristssl::study
