package zero

// SurveyReports is how many stored blocks the survey has reported so far
// (a block may be reported twice), for progress displays.
func (s *Store) SurveyReports() uint64 { return s.survey.reports.Load() }
