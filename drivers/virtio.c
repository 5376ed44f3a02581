/* Transport-independent device initialisation (virtio 1.x §3.1.1), through the transport's ops table. */
#include "virtio.h"

#include <errno.h>
#include <stdio.h>

#include "cpu.h"

#define RESET_POLL_MAX 1000000

int virtio_reset(struct virtio_dev *vd)
{
	vd->ops->set_status(vd, 0);
	for (int i = 0; i < RESET_POLL_MAX; i++) {
		if (vd->ops->get_status(vd) == 0)
			return 0;
		cpu_relax();
	}
	printf("virtio %s: device did not complete reset\n", vd->where);
	return -ETIMEDOUT;
}

int virtio_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	const struct virtio_ops *o = vd->ops;
	int rc;

	/* §3.1.1 step 1: reset the device. */
	rc = virtio_reset(vd);
	if (rc)
		return rc;
	/* Step 2: ACKNOWLEDGE, we noticed the device. Step 3: DRIVER, we know how to drive it. */
	o->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE);
	o->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* Step 4: read the device's features and write the subset we understand. */
	uint64_t offered = o->get_features(vd);
	if (o->legacy)
		required &= ~(1ull << VIRTIO_F_VERSION_1); /* legacy devices have no VERSION_1 */
	if ((offered & required) != required) {
		printf("virtio %s: device lacks required features %#llx (offers %#llx)\n", vd->where,
		       (unsigned long long)(required & ~offered), (unsigned long long)offered);
		rc = -ENOTSUP;
		goto fail;
	}
	vd->features = offered & wanted;
	o->set_features(vd, vd->features);
	if (!o->legacy) {
		/* Step 5: FEATURES_OK. Step 6: re-read it; a device that clears it refuses our subset. */
		o->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
		if (!(o->get_status(vd) & VIRTIO_STATUS_FEATURES_OK)) {
			printf("virtio %s: device refused features %#llx\n", vd->where, (unsigned long long)vd->features);
			rc = -ENOTSUP;
			goto fail;
		}
	}
	return 0;

fail:
	o->set_status(vd, o->get_status(vd) | VIRTIO_STATUS_FAILED);
	return rc;
}

void virtio_driver_ok(struct virtio_dev *vd)
{
	/* §3.1.1 step 8: the device is live from here on. */
	vd->ops->set_status(vd, vd->ops->get_status(vd) | VIRTIO_STATUS_DRIVER_OK);
}
