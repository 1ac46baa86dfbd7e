/*
 * calib_data.c - calibration from a data set spec in one call: the plan and
 * the data set that hpcz_calibrate needs are made and freed here.
 */
#include "internal.h"

hpcz_status hpcz_calibrate_data(hpcz_model *m, const char *data, size_t max_samples, const hpcz_calib_opts *o,
                                hpcz_calib_table **out, hpcz_error *err)
{
    *out = NULL;
    hpcz_plan_opts po = {0};
    po.threads = o ? o->threads : 0;
    hpcz_plan *plan = hpcz_plan_new(m, &po, err);
    if (!plan)
        return err ? err->status : HPCZ_ERR_INVALID;
    hpcz_dataset *d = hpcz_dataset_open(data, plan, max_samples, err);
    hpcz_status st = d ? HPCZ_OK : err ? err->status : HPCZ_ERR_INVALID;
    if (!st) {
        hpcz_calib_opts dflt = {0};
        dflt.bits = 8;
        st = hpcz_calibrate(m, d, o ? o : &dflt, out, err);
    }
    hpcz_dataset_free(d);
    hpcz_plan_free(plan);
    return st;
}
